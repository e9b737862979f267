"""Every registered encoder and loss is exercised the moment it is registered (timm-style)."""

import numpy as np
import pytest
import torch

from models.factory import build_model, list_configs, load_config
from models.registry import LOSSES, TEXT_ENCODERS, VISION_ENCODERS
from xmr.errors import ConfigError

torch.manual_seed(0)


@pytest.mark.parametrize("name", TEXT_ENCODERS.names())
def test_text_encoder_batched_equals_single(name: str) -> None:
    enc = TEXT_ENCODERS.get(name)(50, 16, width=32, layers=1, heads=2, max_tokens=16).eval()
    ids = torch.tensor([[5, 6, 7, 8, 9], [5, 6, 0, 0, 0]])
    mask = (ids > 0).long()
    with torch.no_grad():
        both = enc(ids, mask)
        short = enc(ids[1:, :2], mask[1:, :2])  # the same text, unpadded
    assert both.shape == (2, 16)
    assert torch.allclose(both.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert torch.allclose(both[1], short[0], atol=1e-5)


@pytest.mark.parametrize("name", VISION_ENCODERS.names())
def test_video_encoder_batched_equals_single(name: str) -> None:
    enc = VISION_ENCODERS.get(name)(16, channels=[8, 16], width=32, layers=1, heads=2, max_frames=16).eval()
    frames = torch.randint(0, 255, (2, 6, 32, 32, 3), dtype=torch.uint8)
    mask = torch.tensor([[1] * 6, [1] * 3 + [0] * 3])
    with torch.no_grad():
        v, clips = enc(frames, mask)
        v1, clips1 = enc(frames[1:, :3], mask[1:, :3])
    assert v.shape == (2, 16) and clips.shape == (2, 6, 16)
    assert torch.allclose(v[1], v1[0], atol=1e-5)
    assert torch.allclose(clips[1, :3], clips1[0], atol=1e-5)


@pytest.mark.parametrize("name", LOSSES.names())
def test_loss_prefers_matched_pairs(name: str) -> None:
    loss = LOSSES.get(name)()  # each loss's defaults
    good = loss(torch.eye(8) * 0.9)
    bad = loss(torch.ones(8, 8) * 0.5 - torch.eye(8) * 0.4)
    assert set(good) >= {"loss"}
    assert good["loss"] < bad["loss"]


@pytest.mark.parametrize("config", [c for c in list_configs() if load_config(c).get("task") != "image_text"])
def test_configs_build_and_backprop(config: str) -> None:
    model = build_model(load_config(config), vocab_size=30)
    batch = {
        "input_ids": torch.randint(2, 30, (4, 7)),
        "attention_mask": torch.ones(4, 7, dtype=torch.long),
        "frames": torch.randint(0, 255, (4, 3, model.cfg["frame_size"], model.cfg["frame_size"], 3), dtype=torch.uint8),
        "frame_mask": torch.ones(4, 3, dtype=torch.long),
    }
    out = model(batch)
    out["loss"].backward()
    assert np.isfinite(out["loss"].item())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.vision.parameters())


def test_unknown_names_are_named_in_the_error() -> None:
    with pytest.raises(ConfigError, match="unknown loss 'nope'"):
        LOSSES.get("nope")
    with pytest.raises(ConfigError, match="model config 'nope' not found; known: .*'baseline'"):
        load_config("nope")
