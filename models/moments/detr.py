"""Moment-DETR-style grounding pieces: cross-attention decoder, Hungarian matching and the set loss.

Following moment_detr's recipe (METHODS.md §1(c), [Cb]): matching cost 10·L1(c, w) - 1·gIoU - 4·p(fg);
losses on matched pairs 10·L1 + 1·(1 - gIoU) and a 2-way foreground CE over all queries with the
background class weighted ``eos_coef = 0.1``; the same on every decoder layer (aux loss).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import nn

from models.moments.common import cw_to_se, giou_pairwise, se_to_cw

W_L1, W_GIOU, W_CLS, EOS_COEF = 10.0, 1.0, 4.0, 0.1


class CrossAttention(nn.Module):
    """Queries (B, Q, d) attend to memory (B, M, d) with a (B, M) key mask; plain ops so ONNX export is exact."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.kv, self.out = nn.Linear(width, width), nn.Linear(width, 2 * width), nn.Linear(width, width)

    def forward(self, x: torch.Tensor, mem: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, q, d = x.shape
        h, dh = self.heads, d // self.heads
        qh = self.q(x).reshape(b, q, h, dh).transpose(1, 2)  # (B, H, Q, Dh)
        k, v = self.kv(mem).reshape(b, -1, 2, h, dh).permute(2, 0, 3, 1, 4).unbind(0)  # (B, H, M, Dh) each
        scores = (qh @ k.transpose(-1, -2)) / dh**0.5  # (B, H, Q, M)
        scores = scores.masked_fill(mask[:, None, None, :] == 0, -1e4)
        return self.out((scores.softmax(-1) @ v).transpose(1, 2).reshape(b, q, d))


class DecoderLayer(nn.Module):
    """Pre-norm: self-attention among moment queries, cross-attention to the memory, MLP."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.ln1, self.ln2, self.ln3 = nn.LayerNorm(width), nn.LayerNorm(width), nn.LayerNorm(width)
        self.self_attn = CrossAttention(width, heads)
        self.cross = CrossAttention(width, heads)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor, qpos: torch.Tensor, mem: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.attend_memory(self.attend_queries(x, qpos), qpos, mem, mask)

    def attend_queries(self, x: torch.Tensor, qpos: torch.Tensor) -> torch.Tensor:
        """The self-attention among the moment queries: in the first layer it depends on the query alone."""
        y = self.ln1(x) + qpos
        return x + self.self_attn(y, y, torch.ones_like(x[..., 0]))

    def attend_memory(self, x: torch.Tensor, qpos: torch.Tensor, mem: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Cross-attention to the memory (clips and query tokens), then the MLP."""
        x = x + self.cross(self.ln2(x) + qpos, mem, mask)
        return x + self.mlp(self.ln3(x))


@torch.no_grad()
def hungarian(cw: torch.Tensor, fg: torch.Tensor, gt: list[torch.Tensor]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Match each sample's predictions (Q, 2) (c, w) / fg prob (Q,) to its GT windows (G, 2) (start, end)."""
    out = []
    for b, g in enumerate(gt):
        cost = W_L1 * torch.cdist(cw[b], se_to_cw(g), p=1) - W_GIOU * giou_pairwise(cw_to_se(cw[b]), g)
        cost = cost - W_CLS * fg[b][:, None]
        out.append(linear_sum_assignment(cost.cpu().numpy()))
    return out


def set_loss(cw: torch.Tensor, logits: torch.Tensor, gt: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """One decoder layer's loss. cw (B, Q, 2), logits (B, Q, 2) with class 0 = foreground."""
    match = hungarian(cw, logits.softmax(-1)[..., 0], gt)
    pred = torch.cat([cw[b, i] for b, (i, _) in enumerate(match)])  # (N, 2)
    target = torch.cat([gt[b][j] for b, (_, j) in enumerate(match)])  # (N, 2) start, end
    l1 = F.l1_loss(pred, se_to_cw(target), reduction="none").sum(-1).mean()
    giou = torch.diagonal(giou_pairwise(cw_to_se(pred), target)).mean()
    labels = torch.ones(logits.shape[:2], dtype=torch.long)  # background everywhere ...
    for b, (i, _) in enumerate(match):
        labels[b, torch.as_tensor(i, dtype=torch.long)] = 0  # ... but the matched queries
    ce = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), weight=torch.tensor([1.0, EOS_COEF]))
    return {"l1": l1, "giou": giou, "ce": ce, "loss": W_L1 * l1 + W_GIOU * (1 - giou) + W_CLS * ce}
