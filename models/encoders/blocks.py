"""Transformer blocks written out so that padding is exactly masked and ONNX export is plain ops."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SelfAttention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape  # (B, T, D); mask (B, T) with 1 = real token
        q, k, v = (
            self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        )  # (B, H, T, Dh) each
        scores = q @ k.transpose(-1, -2) / (d // self.heads) ** 0.5  # (B, H, T, T)
        scores = scores.masked_fill(mask[:, None, None, :] == 0, -1e4)
        y = scores.softmax(-1) @ v  # (B, H, T, Dh)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.attn = SelfAttention(width, heads)
        self.ln2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), mask)
        return x + self.mlp(self.ln2(x))


class SequenceEncoder(nn.Module):
    """Positional embedding + transformer blocks + masked mean pooling: (B, T, D) -> (B, D)."""

    def __init__(self, width: int, layers: int, heads: int, max_len: int) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(max_len, width))
        nn.init.normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (pooled (B, D), per-step features (B, T, D))."""
        x = x + self.pos[: x.shape[1]]
        for block in self.blocks:
            x = block(x, mask)
        x = self.ln(x)
        m = mask.unsqueeze(-1).to(x.dtype)  # (B, T, 1)
        return (x * m).sum(1) / m.sum(1).clamp_min(1.0), x


def l2norm(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, dim=-1)
