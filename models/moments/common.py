"""Pieces every moment head shares: the frozen query tower, clip positions, span algebra, the base class.

Span convention (the ONNX contract, bundle.MOMENT_HEAD_OUTPUTS): a span is ``(start, end)`` as fractions
of the video's own valid clips (``n = clip_mask.sum()``): second = fraction * n / clip_rate. Every head
reads clip positions as ``(i + 0.5) / n`` and attends only to valid clips, so padding a video in a batch
never changes its outputs. Saliency of padded clips is ``PAD_SALIENCY``.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from xmr.errors import ConfigError

PAD_SALIENCY = -1e4


class QueryTower(nn.Module):
    """A frozen copy of the retrieval run's text tower: ids -> sentence (B, E) and tokens (B, L, E), unit norm.

    Tokens go through the tower's own projection (as clips go through the video tower's), so token,
    sentence and clip features share the retrieval embedding space.
    """

    def __init__(self, tower: nn.Module) -> None:
        super().__init__()
        if not hasattr(tower, "encode_both"):
            raise ConfigError(
                f"a moment head needs a text tower with encode_both (sentence and tokens); "
                f"{type(tower).__name__} has none"
            )
        self.tower = copy.deepcopy(tower).eval()
        self.tower.requires_grad_(False)
        self.dim = int(self.tower.proj.out_features)

    def train(self, mode: bool = True) -> QueryTower:
        return super().train(False)  # frozen: dropout/BatchNorm stay in inference mode

    @torch.no_grad()
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # One pass of the text encoder for both (before 2026-12-06 the sentence and the tokens each ran it:
        # the same numbers at twice the query graph's cost).
        both: tuple[torch.Tensor, torch.Tensor] = self.tower.encode_both(input_ids, attention_mask)
        return both


def clip_positions(clip_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, T) mask -> (index (B, T) float 0..T-1, centre fraction (B, T), n valid clips (B, 1) float).

    Built from cumsum (not arange on a Python int) so the ONNX graph keeps T dynamic.
    """
    m = clip_mask.to(torch.float32)
    index = torch.cumsum(torch.ones_like(m), 1) - 1.0
    n = m.sum(1, keepdim=True).clamp_min(1.0)
    return index, (index + 0.5) / n, n


def sine_embed(x: torch.Tensor, dim: int) -> torch.Tensor:
    """(..., ) values in [0, 1] -> (..., dim) sinusoidal features (DETR-style, temperature 10000)."""
    freqs = torch.exp(torch.arange(dim // 2, dtype=torch.float32) * (-math.log(10000.0) / (dim // 2)))
    ang = x.unsqueeze(-1) * 2 * math.pi * freqs * 100  # 100: a fraction's resolution spread over the bands
    return torch.cat([ang.sin(), ang.cos()], -1)


def cw_to_se(cw: torch.Tensor) -> torch.Tensor:
    """(..., 2) (centre, width) -> (..., 2) (start, end), clamped to [0, 1]."""
    return torch.stack([cw[..., 0] - cw[..., 1] / 2, cw[..., 0] + cw[..., 1] / 2], -1).clamp(0.0, 1.0)


def se_to_cw(se: torch.Tensor) -> torch.Tensor:
    return torch.stack([(se[..., 0] + se[..., 1]) / 2, se[..., 1] - se[..., 0]], -1)


def giou_pairwise(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Generalised IoU of (N, 2) and (M, 2) (start, end) spans -> (N, M)."""
    inter = (torch.minimum(a[:, None, 1], b[None, :, 1]) - torch.maximum(a[:, None, 0], b[None, :, 0])).clamp_min(0)
    union = (a[:, 1] - a[:, 0])[:, None] + (b[:, 1] - b[:, 0])[None, :] - inter
    hull = torch.maximum(a[:, None, 1], b[None, :, 1]) - torch.minimum(a[:, None, 0], b[None, :, 0])
    iou = inter / union.clamp_min(1e-6)
    return iou - (hull - union) / hull.clamp_min(1e-6)


def saliency_hinge(sal: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, margin: float = 0.2) -> torch.Tensor:
    """Moment-DETR's saliency loss: mean(max(0, margin + s(neg) - s(pos))) * 2 over (B, P) clip index pairs."""
    sp, sn = sal.gather(1, pos), sal.gather(1, neg)
    return (margin + sn - sp).clamp_min(0).mean() * 2


class MomentHead(nn.Module):
    """Base of every head: holds the config and the frozen query tower.

    Two stages, exported as two graphs (models/moments/export.py): ``text`` turns the query into a
    sentence vector and token vectors once per request (bundle.MOMENT_QUERY), ``localize`` scores
    clip windows given them (bundle.MOMENT_HEAD), so a request with many windows runs the text tower
    once. ``forward`` is the two in a row (training, prediction and the export check use it). A head
    may also have a clip side (``clip_side``, bundle.MOMENT_CLIPS): per-clip tensors computed once per
    clip when the bundle is built.
    """

    trainable = True

    def __init__(self, cfg: dict[str, Any], text_tower: nn.Module) -> None:
        super().__init__()
        self.cfg = cfg
        self.text = QueryTower(text_tower)
        self.dim = self.text.dim

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, clips: torch.Tensor, clip_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        sentence, tokens = self.text(input_ids, attention_mask)
        return self.localize(sentence, tokens, attention_mask, clips, clip_mask)

    def localize(
        self,
        sentence: torch.Tensor,
        tokens: torch.Tensor,
        attention_mask: torch.Tensor,
        clips: torch.Tensor,
        clip_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """sentence (B, E), tokens (B, L, E), attention_mask (B, L), clips (B, T, E), clip_mask (B, T)
        -> spans (B, Q, 2), span_scores (B, Q), saliency (B, T) (bundle.MOMENT_HEAD_OUTPUTS).

        A head overrides this, or ``query_side``, ``clip_side`` and ``localize_windows`` (whose composition it is)."""
        query = self.query_side(sentence, tokens, attention_mask)
        return self.localize_windows(query, attention_mask, clips, clip_mask, self.clip_side(clips))

    def query_side(
        self, sentence: torch.Tensor, tokens: torch.Tensor, attention_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """What the window stage needs from the query alone, batch-first, by name: the query graph's outputs
        besides ``sentence`` (bundle.MOMENT_QUERY), computed once per request instead of once per window."""
        return {"sentence": sentence, "tokens": tokens}

    def clip_side(self, clips: torch.Tensor) -> dict[str, torch.Tensor]:
        """What the window stage needs from each clip alone, by name: (..., E) clips -> (...) or (..., k) per
        clip (bundle.MOMENT_CLIPS, run over every clip once when the bundle is built and stored beside the
        clip features, so no request recomputes it). By default nothing."""
        return {}

    def localize_windows(
        self,
        query: dict[str, torch.Tensor],
        attention_mask: torch.Tensor,
        clips: torch.Tensor,
        clip_mask: torch.Tensor,
        clip_side: dict[str, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``localize`` from ``query_side``'s tensors and ``clip_side``'s (of these clips; computed here when
        None) (bundle.MOMENT_HEAD, the graph run on every window)."""
        return self.localize(query["sentence"], query["tokens"], attention_mask, clips, clip_mask)

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError
