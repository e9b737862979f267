"""The real models side end to end: a `sliding_window` head (models/moments, no training needed) written
into a run, put into a bundle by the indexer's export, and served by /v1/moments and search moments."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import bundle
from indexer.build import build
from tests.service.test_api import client_for

pytestmark = pytest.mark.slow


def test_real_head_through_index_build_and_service(corpus: Path, trained_run: Path, tmp_path: Path) -> None:
    from models.data.demo_moments import build_long_moments
    from models.moments.train import MomentTrainOptions, train_head

    run = tmp_path / "run"
    run.mkdir()
    for f in ("last.pt", "config.json", bundle.TOKENIZER):
        shutil.copy2(trained_run / f, run / f)
    long_data = tmp_path / "long"
    build_long_moments(long_data, 4, seed=2)
    train_head(MomentTrainOptions(long_data, run, "sliding_window", validate=False))
    lines = (corpus / "manifest.jsonl").read_text().splitlines()
    manifest = corpus / f"manifest-{tmp_path.name}.jsonl"  # beside the media, so relative uris resolve
    manifest.write_text("\n".join(lines[:5] + lines[-1:]) + "\n")
    path = build(manifest, "real", tmp_path / "bundles", run, batch_size=8).path
    entry = bundle.verify(path)["moment_head"]
    assert entry["name"] == "sliding_window" and entry["onnx_max_abs_diff"] <= 1e-4
    with client_for(tmp_path / "bundles") as c:
        r = c.post("/v1/moments", json={"query": "a red 7 moves left", "video_id": "vid00001", "k": 3})
        assert r.status_code == 200, r.text
        body = r.json()
        assert 1 <= len(body["moments"]) <= 3 and len(body["saliency"]) == round(body["duration"] * 2)
        assert all(0 <= m["start"] < m["end"] <= body["duration"] for m in body["moments"])
        hits = c.post("/v1/search", json={"query": "a red 7", "k": 6, "moments": 2}).json()["hits"]
        assert all((h["moments"] is not None) == (h["modality"] == "video") for h in hits)
        assert any(h["moments"] for h in hits)
