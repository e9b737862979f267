"""ViSERN and ProTA learn on the demo corpus, beat an untrained model by a wide margin, and export."""

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from models.checkpoint import load_trained
from models.data.datasets import load_corpus
from models.evaluate import evaluate_split
from models.export import export_text_encoder
from models.factory import build_model
from models.videotext.rerank import check_inputs, export_rerank

pytestmark = pytest.mark.slow
CONFIGS = ("visern_tiny", "prota_tiny")


@pytest.mark.parametrize("config", CONFIGS)
def test_loss_decreases(videotext_runs: dict[str, Path], config: str) -> None:
    losses = [json.loads(x)["train_loss"] for x in (videotext_runs[config] / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 10
    assert losses[-1] < 0.75 * losses[0]


@pytest.mark.parametrize("config", CONFIGS)
def test_trained_beats_untrained_by_a_wide_margin(videotext_runs: dict[str, Path], corpus: Path, config: str) -> None:
    model, tok, cfg = load_trained(videotext_runs[config])
    samples = load_corpus(corpus)
    trained = evaluate_split(model, tok, cfg, samples, "train", corpus / ".cache")["video"]["t2v"]
    torch.manual_seed(0)
    fresh = build_model(cfg, tok.get_vocab_size()).eval()
    untrained = evaluate_split(fresh, tok, cfg, samples, "train", corpus / ".cache")["video"]["t2v"]
    assert trained["R@1"] >= max(3 * untrained["R@1"], untrained["R@1"] + 15)
    assert trained["MdR"] < untrained["MdR"] / 3


@pytest.mark.parametrize("config", CONFIGS)
def test_text_side_exports_within_1e_4(videotext_runs: dict[str, Path], config: str, tmp_path: Path) -> None:
    model, tok, _ = load_trained(videotext_runs[config])
    assert export_text_encoder(model, tok, tmp_path) <= 1e-4


def test_prota_rerank_graph_matches_torch_within_1e_4(videotext_runs: dict[str, Path], tmp_path: Path) -> None:
    model, tok, _ = load_trained(videotext_runs["prota_tiny"])
    assert export_rerank(model, tok, tmp_path) <= 1e-4
    ids, mask, clips, clip_mask = check_inputs(model, tok, seed=7)  # other candidates than the export's check
    clips, clip_mask = clips[:3, :4], clip_mask[:3, :4]  # and other shapes (dynamic axes)
    sess = ort.InferenceSession(str(tmp_path / "rerank.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input_ids": ids, "attention_mask": mask, "clips": clips, "clip_mask": clip_mask})[0]
    with torch.no_grad():
        want = model.pair_scores(*(torch.from_numpy(a) for a in (ids, mask, clips, clip_mask))).numpy()
    assert got.shape == (len(ids), 3)
    np.testing.assert_allclose(got, want, atol=1e-4)
