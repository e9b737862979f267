"""Shared fixtures: one tiny real corpus (mp4 via PyAV), one briefly trained model, one published bundle.

Built once per session; everything downstream (export, indexing, serving, e2e) uses real files.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Re-exported: tests written before the harness moved import these names from here.
from tests.harness import copy_with_new_version, free_port, publish_copy, start_server  # noqa: F401

os.environ.setdefault("OMP_NUM_THREADS", "1")
TINY_VIDEOS, TINY_IMAGES = 120, 10


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from models.data.demo_corpus import build_demo_corpus

    out = tmp_path_factory.mktemp("corpus")
    build_demo_corpus(out, videos=TINY_VIDEOS, images=TINY_IMAGES, seed=3)
    return out


@pytest.fixture(scope="session")
def trained_run(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from models.train import TrainOptions, train

    out = tmp_path_factory.mktemp("run")
    train(TrainOptions(data=corpus, out=out, config="baseline_tiny", epochs=20, batch_size=16, lr=3e-3, seed=0))
    return out


@pytest.fixture(scope="session")
def videotext_runs(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """ViSERN and ProTA (models/videotext), briefly trained on ``corpus`` with one seed and budget."""
    from models.train import TrainOptions, train

    runs = {}
    for config in ("visern_tiny", "prota_tiny"):
        out = tmp_path_factory.mktemp(config)
        train(TrainOptions(data=corpus, out=out, config=config, epochs=10, batch_size=16, lr=3e-3, seed=0))
        runs[config] = out
    return runs


@pytest.fixture(scope="session")
def bundle_root(corpus: Path, trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from indexer.build import build

    root = tmp_path_factory.mktemp("bundles")
    build(corpus / "manifest.jsonl", "demo", root, trained_run, batch_size=16)
    return root
