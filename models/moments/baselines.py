"""The two baseline heads: ``sliding_window`` (no training, the floor) and ``span_regression``.

Both are xmr's own designs (no paper): they bracket what a moment head should beat.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from models.encoders.blocks import Block
from models.moments.common import (
    PAD_SALIENCY,
    MomentHead,
    clip_positions,
    cw_to_se,
    giou_pairwise,
    saliency_hinge,
    se_to_cw,
    sine_embed,
)
from models.registry import MOMENT_HEADS


def window_grid(widths: list[float], stride: float) -> torch.Tensor:
    """Fixed proposals (Q, 2) as fractions: for each width, starts every ``stride * width`` over [0, 1 - width]."""
    spans = []
    for w in widths:
        n = int(round((1 - w) / (stride * w))) + 1
        spans += [[i * (1 - w) / max(n - 1, 1), i * (1 - w) / max(n - 1, 1) + w] for i in range(n)]
    return torch.tensor(spans, dtype=torch.float32)


@MOMENT_HEADS.register("sliding_window")
class SlidingWindow(MomentHead):
    """Windows of several widths (fractions of the video), scored by query-clip cosine similarity.

    xmr's design: score = mean similarity inside the window - mean similarity outside it (a window
    that merely sits in a generally similar video does not win); the span reported is the proposal
    snapped to the clips it covers. Saliency = the clip's similarity to the sentence.
    """

    trainable = False

    def __init__(self, cfg: dict[str, Any], text_tower: nn.Module) -> None:
        super().__init__(cfg, text_tower)
        self.register_buffer("grid", window_grid(cfg.get("widths", [0.05, 0.1, 0.15, 0.2, 0.3]), 0.25))

    def localize(
        self,
        sentence: torch.Tensor,
        tokens: torch.Tensor,
        attention_mask: torch.Tensor,
        clips: torch.Tensor,
        clip_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        valid = clip_mask.to(torch.float32)  # (B, T)
        sims = torch.einsum("bte,be->bt", clips, sentence)  # (B, T)
        index, frac, n = clip_positions(clip_mask)
        st, ed = self.grid[None, :, 0:1], self.grid[None, :, 1:2]  # (1, Q, 1)
        inside = ((frac[:, None] >= st) & (frac[:, None] < ed)).to(torch.float32) * valid[:, None]  # (B, Q, T)
        outside = valid[:, None] - inside
        mean_in = (inside * sims[:, None]).sum(-1) / inside.sum(-1).clamp_min(1.0)
        mean_out = (outside * sims[:, None]).sum(-1) / outside.sum(-1).clamp_min(1.0)
        score = torch.where(inside.sum(-1) > 0, mean_in - mean_out, torch.full_like(mean_in, -2.0))
        first = torch.where(inside > 0, index[:, None], torch.full_like(inside, 1e9)).amin(-1)  # (B, Q)
        last = torch.where(inside > 0, index[:, None], torch.full_like(inside, -1.0)).amax(-1)
        spans = torch.stack([first / n, (last + 1) / n], -1).clamp(0.0, 1.0)  # (B, Q, 2)
        return spans, score, sims.masked_fill(clip_mask == 0, PAD_SALIENCY)


@MOMENT_HEADS.register("span_regression")
class SpanRegression(MomentHead):
    """One (centre, width) per query from attention-pooled, query-modulated clips; L1 + gIoU (+ saliency hinge).

    xmr's design: clips enter as ``W1 v + W2 (v * q) + W3 cos(v, q)`` plus a sine position of their centre fraction,
    one transformer block, attention pooling over the clips; the centre is the attention's expected
    position, the width an MLP of the pooled clips and the query. ``span_scores`` is the attention's
    peak (how sure the head is that one place matters).
    """

    def __init__(self, cfg: dict[str, Any], text_tower: nn.Module) -> None:
        super().__init__(cfg, text_tower)
        d = cfg.get("hidden", 64)
        self.hidden = d
        self.inp = nn.Linear(self.dim, d)
        self.mod = nn.Linear(self.dim, d)
        self.sim = nn.Linear(1, d)
        self.block = Block(d, cfg.get("heads", 4))
        self.attn = nn.Linear(d, 1)
        self.sal = nn.Linear(d, 1)
        self.out = nn.Sequential(nn.Linear(2 * d, d), nn.ReLU(), nn.Linear(d, 2))

    def encode(
        self, sent: torch.Tensor, clips: torch.Tensor, clip_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The query tower's sentence (B, E) + clips -> (c, w) (B, 2), attention peak (B,), saliency (B, T)."""
        _, frac, _ = clip_positions(clip_mask)
        cos = torch.einsum("bte,be->bt", clips, sent)[..., None]  # (B, T, 1) retrieval similarity
        x = self.inp(clips) + self.mod(clips * sent[:, None]) + self.sim(cos) + sine_embed(frac, self.hidden)
        x = self.block(x, clip_mask)
        a = self.attn(x).squeeze(-1).masked_fill(clip_mask == 0, -1e4).softmax(-1)  # (B, T)
        pooled = (a.unsqueeze(-1) * x).sum(1)  # (B, d)
        centre = (a * frac).sum(-1)  # (B,): the attention's expected clip position
        width = self.out(torch.cat([pooled, self.mod(sent)], -1)).sigmoid()[:, 1]  # (B,)
        cw = torch.stack([centre, width], -1)  # (B, 2)
        sal = self.sal(x).squeeze(-1).masked_fill(clip_mask == 0, PAD_SALIENCY)
        return cw, a.amax(-1), sal

    def localize(
        self,
        sentence: torch.Tensor,
        tokens: torch.Tensor,
        attention_mask: torch.Tensor,
        clips: torch.Tensor,
        clip_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cw, peak, sal = self.encode(sentence, clips, clip_mask)
        return cw_to_se(cw)[:, None], peak[:, None], sal

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """batch: the forward inputs + ``gt`` (B, 2) first GT window as fractions, ``pos``/``neg`` (B, P) clip ids."""
        sent, _ = self.text(batch["input_ids"], batch["attention_mask"])
        cw, _, sal = self.encode(sent, batch["clips"], batch["clip_mask"])
        l1 = (cw - se_to_cw(batch["gt"])).abs().sum(-1).mean()
        giou = torch.diagonal(giou_pairwise(cw_to_se(cw), batch["gt"])).mean()
        hinge = saliency_hinge(sal, batch["pos"], batch["neg"])
        total = 10 * l1 + (1 - giou) + hinge
        return {"loss": total, "l1": l1, "giou": giou, "saliency": hinge}
