"""A tiny image-text demo set (precomp + PNGs + manifest) and one briefly trained run, built once per session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

TINY: dict[str, Any] = {"embed_dim": 32, "text": {"word_dim": 16, "max_tokens": 32}}
IMAGES = 240  # 192 train / 24 dev / 24 test


@pytest.fixture(scope="session")
def it_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from models.imagetext.demo import build_imagetext_demo

    out = tmp_path_factory.mktemp("imagetext")
    build_imagetext_demo(out, images=IMAGES, seed=5)
    return out


@pytest.fixture(scope="session")
def it_run(it_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from models.imagetext.train import ImageTextOptions, train_image_text

    out = tmp_path_factory.mktemp("it_run")
    opts = ImageTextOptions(it_data, out, "vsepp_triplet_sum", 0, TINY, {"batch_size": 32, "lr": 5e-3}, max_steps=60)
    train_image_text(opts)
    return out
