"""Baseline dual encoder: text tower + video/image tower in one embedding space."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from models.encoders import minilm
from models.registry import LOSSES, MODELS, TEXT_ENCODERS, VISION_ENCODERS


@MODELS.register("dual_encoder")
class DualEncoder(nn.Module):
    def __init__(self, cfg: dict[str, Any], vocab_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        e = cfg["embed_dim"]
        self.text = TEXT_ENCODERS.get(cfg.get("text_encoder", "transformer"))(vocab_size, e, **cfg["text"])
        self.vision = VISION_ENCODERS.get(cfg.get("vision_encoder", "cnn_temporal"))(e, **cfg["vision"])
        self.loss = LOSSES.get(cfg["loss"])(temperature=cfg["temperature"])

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """Optimizer groups: pretrained weights (``text.bert``) train at ``lr * pretrained_lr_scale``."""
        return minilm.param_groups(self, self.cfg, lr)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) -> (B, E) unit norm."""
        return self.text(input_ids, attention_mask)

    def encode_video(self, frames: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, S, S, 3) uint8 + (B, T) mask -> video (B, E), clips (B, T, E), both unit norm."""
        return self.vision(frames, mask)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        t = self.encode_text(batch["input_ids"], batch["attention_mask"])
        v, _ = self.encode_video(batch["frames"], batch["frame_mask"])
        return self.loss(t @ v.t())
