"""VSE++ and RVSE++ image-text models (METHODS.md §4-§5), registered as ``vsepp`` and ``rvsepp``.

Config keys (models/configs/vsepp_*.json, rvsepp_*.json): ``embed_dim``; ``image_dim`` (region
feature size D, set from the data at training time); ``text_encoder`` (``gru`` | ``bigru_gpo`` |
``minilm``) with ``text`` options; ``loss`` with ``loss_args``; ``features`` (optional): the spec of
the grid extractor that made the data's regions, so the model can embed an image file itself.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import models.imagetext.graded_losses  # noqa: F401  (registers bcls, listwise)
import models.imagetext.losses  # noqa: F401  (registers triplet_hn, triplet_sum, selhn, unified)
from models.encoders import minilm
from models.imagetext.encoders import MaxPoolRegions, ResidualGPORegions
from models.imagetext.features import GridFeatures
from models.registry import LOSSES, MODELS, TEXT_ENCODERS

TASK = "image_text"  # config["task"]: selects the image-text training loop and indexer branch


class ImageTextModel(nn.Module):
    """Text tower + region image tower; ``forward`` returns the configured loss's named terms."""

    image_tower: type[nn.Module] = MaxPoolRegions

    def __init__(self, cfg: dict[str, Any], vocab_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        e = cfg["embed_dim"]
        self.text = TEXT_ENCODERS.get(cfg["text_encoder"])(vocab_size, e, **cfg["text"])
        self.image = self.image_tower(cfg["image_dim"], e)
        self.loss = LOSSES.get(cfg["loss"])(**cfg.get("loss_args", {}))
        self.pixels = GridFeatures(cfg["features"]) if cfg.get("features") else None

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """Optimizer groups: pretrained MiniLM weights (``text.bert``) at ``lr * pretrained_lr_scale``."""
        return minilm.param_groups(self, self.cfg, lr)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) int64 ids and mask -> (B, E) unit norm (the bundle's text-encoder contract)."""
        return self.text(input_ids, attention_mask)

    def encode_image(self, regions: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Region features (B, K, D) float with lengths (B,) -> (B, E) unit norm."""
        return self.image(regions, lengths)

    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, S, S, 3) uint8 RGB images -> (B, E): the grid extractor the training data used, then the tower."""
        if self.pixels is None:
            raise ValueError(
                f"model {self.cfg.get('name')!r} was trained on precomputed features without an extractor "
                "spec (features.json); it cannot embed image files"
            )
        regions = self.pixels(pixels)  # (B, K, D)
        return self.encode_image(regions, torch.full((len(regions),), regions.shape[1], device=regions.device))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        v = self.encode_image(batch["regions"], batch["lengths"])
        t = self.encode_text(batch["input_ids"], batch["attention_mask"])
        return self.loss(v @ t.t(), relevance=batch.get("relevance"))  # (B, B): image i x caption j


@MODELS.register("vsepp")
class VSEPP(ImageTextModel):
    """VSE++ (as in ITM_CLS/Listwise_ITR): FC + max over regions; GRU last state (or MiniLM)."""

    image_tower = MaxPoolRegions


@MODELS.register("rvsepp")
class RVSEPP(ImageTextModel):
    """RVSE++: FC + residual MLP over regions + GPO; BiGRU (directions averaged) + GPO text (or MiniLM)."""

    image_tower = ResidualGPORegions
