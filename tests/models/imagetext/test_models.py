"""VSE++ / RVSE++ towers: padding exactness, GPO, every image-text config, ONNX text side <= 1e-4."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bundle import TEXT_ENCODER
from models.export import export_text_encoder, max_abs_diff
from models.factory import build_model, list_configs, load_config
from models.imagetext.encoders import GPO, MaxPoolRegions, ResidualGPORegions
from models.imagetext.features import GridFeatures, default_spec
from models.tokenizer import build_tokenizer
from tests.models.imagetext.conftest import TINY

IMAGE_TEXT = [c for c in list_configs() if load_config(c).get("task") == "image_text"]
WORD_CONFIGS = [c for c in IMAGE_TEXT if load_config(c)["text_encoder"] != "minilm"]


def _model(config: str, image_dim: int = 12) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(load_config(config, **TINY, image_dim=image_dim), vocab_size=40)


def test_every_model_and_loss_has_a_config() -> None:
    names = {(load_config(c)["arch"], load_config(c)["loss"]) for c in IMAGE_TEXT}
    losses = {"triplet_hn", "triplet_sum", "selhn", "bcls", "listwise", "unified"}
    assert {(a, loss) for a in ("vsepp", "rvsepp") for loss in losses} <= names


@pytest.mark.parametrize("config", WORD_CONFIGS)
def test_configs_build_and_backprop_with_pseudo_labels(config: str) -> None:
    model = _model(config).train()
    batch = {
        "regions": torch.rand(5, 7, 12),
        "lengths": torch.tensor([7, 7, 3, 5, 1]),
        "input_ids": torch.randint(2, 40, (5, 6)),
        "attention_mask": torch.ones(5, 6, dtype=torch.long),
        "relevance": torch.eye(5) * 0.5 + 0.5,
    }
    out = model(batch)
    out["loss"].backward()
    assert np.isfinite(out["loss"].item())
    assert all(p.grad is not None for n, p in model.named_parameters() if n.startswith(("image.fc", "text.embed")))


@pytest.mark.parametrize("tower", [MaxPoolRegions, ResidualGPORegions])
def test_image_towers_ignore_padding_regions(tower: type[torch.nn.Module]) -> None:
    torch.manual_seed(0)
    enc = tower(12, 16).eval()
    regions = torch.rand(2, 6, 12)
    padded = regions.clone()
    padded[1, 3:] = 99.0  # garbage in the padding must not matter
    both = enc(padded, torch.tensor([6, 3]))
    alone = enc(regions[1:, :3], torch.tensor([3]))
    torch.testing.assert_close(both[1], alone[0], atol=1e-5, rtol=0)


def test_gpo_of_one_element_is_the_element_and_of_equal_elements_is_that_value() -> None:
    gpo = GPO()
    x = torch.randn(1, 1, 5)
    torch.testing.assert_close(gpo(x, torch.tensor([1])), x[:, 0])
    same = torch.full((1, 4, 3), 2.0)
    torch.testing.assert_close(gpo(same, torch.tensor([4])), torch.full((1, 3), 2.0))


@pytest.mark.parametrize("config", ["vsepp_selhn", "rvsepp_selhn"])
def test_text_side_exports_to_onnx_within_1e4(config: str, tmp_path: Path) -> None:
    model = _model(config).eval()
    tok = build_tokenizer(["a red 7 moves left", "a blue 3 appears then a green 1 moves up", "a yellow 9"])
    assert export_text_encoder(model, tok, tmp_path) <= 1e-4  # raises above 1e-4; batches of mixed lengths
    for texts in (["a red 7"], ["a blue 3 appears", "x", "a green 1 moves up then a red 7", "a", "7 7", "red", "up"]):
        assert max_abs_diff(model, tok, tmp_path / TEXT_ENCODER, texts) <= 1e-4  # other batch sizes and lengths


def test_encode_pixels_is_the_extractor_then_the_image_tower() -> None:
    spec = {**default_spec(), "image_size": 32, "channels": [8, 12], "grid": 3}
    cfg = load_config("rvsepp_selhn", **TINY, image_dim=12, features=spec)
    model = build_model(cfg, vocab_size=40).eval()
    pixels = torch.randint(0, 255, (3, 32, 32, 3), dtype=torch.uint8)
    regions = GridFeatures(spec)(pixels)  # a fresh extractor from the same spec: identical weights
    assert regions.shape == (3, 9, 12)
    torch.testing.assert_close(model.encode_pixels(pixels), model.encode_image(regions, torch.full((3,), 9)))
