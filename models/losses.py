"""Contrastive losses. Each is an nn.Module returning a dict of named terms; "loss" is optimised."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.registry import LOSSES


@LOSSES.register("infonce")
class InfoNCE(nn.Module):
    """Symmetric InfoNCE (CLIP) with a learnable temperature.

    ``sim`` is the (B, B) cosine-similarity matrix of matched text/visual pairs on the diagonal.
    """

    def __init__(self, temperature: float = 0.07, max_scale: float = 100.0) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))
        self.max_scale = max_scale

    def forward(self, sim: torch.Tensor) -> dict[str, torch.Tensor]:
        scale = self.log_scale.exp().clamp(max=self.max_scale)
        logits = sim * scale  # (B, B)
        target = torch.arange(sim.shape[0], device=sim.device)
        t2v = F.cross_entropy(logits, target)
        v2t = F.cross_entropy(logits.t(), target)
        return {"loss": (t2v + v2t) / 2, "t2v": t2v.detach(), "v2t": v2t.detach(), "scale": scale.detach()}
