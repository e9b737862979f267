"""Towers of VSE++ and RVSE++ (METHODS.md §4-§5): GRU text encoders, region image encoders, GPO pooling.

Recurrences are written so that padding is exact without ``pack_padded_sequence`` (which the
ONNX exporter cannot trace): the backward direction runs a forward GRU over each sequence
reversed within its own length. A padded batch therefore encodes every text exactly as it
would alone, and the text side exports to a plain ONNX graph.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from tokenizers import Tokenizer
from torch import nn

from models.encoders.blocks import l2norm
from models.registry import TEXT_ENCODERS
from models.tokenizer import build_tokenizer


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse the first ``lengths[b]`` steps of each row of ``x`` (B, L, D); padding stays in place."""
    pos = torch.arange(x.shape[1], device=x.device)[None, :]  # (1, L)
    idx = lengths[:, None] - 1 - pos  # (B, L)
    idx = torch.where(idx >= 0, idx, pos)
    return x.gather(1, idx[:, :, None].expand_as(x))


class BiGRUMean(nn.Module):
    """1-layer bidirectional GRU, the two directions averaged (VSE∞ / RVSE++): (B, L, Din) -> (B, L, H)."""

    def __init__(self, d_in: int, hidden: int) -> None:
        super().__init__()
        self.fwd = nn.GRU(d_in, hidden, batch_first=True)
        self.bwd = nn.GRU(d_in, hidden, batch_first=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        f = run_gru(self.fwd, x)
        b = run_gru(self.bwd, reverse_padded(x, lengths))
        return (f + reverse_padded(b, lengths)) / 2


def run_gru(gru: nn.GRU, x: torch.Tensor) -> torch.Tensor:
    """``gru`` over (B, L, D) from an explicit zero state built from ``x``'s shape, so an exported
    graph takes any batch size (an implicit state would be traced with the export batch's size)."""
    h0 = torch.zeros(1, x.shape[0], gru.hidden_size, dtype=x.dtype, device=x.device)
    return gru(x, h0)[0]


def sine_positions(n: int | torch.Tensor, d: int, device: torch.device) -> torch.Tensor:
    """(n, d) sine/cosine encodings of positions 0..n-1 (VSE∞ ``positional_encoding_1d``)."""
    pos = torch.arange(n, device=device).float()[:, None]  # (n, 1)
    div = torch.exp(torch.arange(0, d, 2, device=device).float() * (-math.log(10000.0) / d))  # (d/2,)
    return torch.stack([torch.sin(pos * div), torch.cos(pos * div)], dim=-1).flatten(1)  # (n, d) sin/cos interleaved


class GPO(nn.Module):
    """Generalized Pooling Operator (VSE∞ ``gpo.py``): a learned weighting of each dimension's sorted values.

    The weights depend only on the set size n (a BiGRU over positional encodings of 0..n-1 scores
    each rank; softmax at temperature 0.1); every feature dimension is sorted descending over the
    set and summed with those weights, so GPO spans max-pooling, mean-pooling and k-max pooling.
    """

    def __init__(self, d_pe: int = 32, d_hidden: int = 32) -> None:
        super().__init__()
        self.d_pe = d_pe
        self.gru = BiGRUMean(d_pe, d_hidden)
        self.linear = nn.Linear(d_hidden, 1, bias=False)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """feats (B, K, D), lengths (B,) -> pooled (B, D); positions >= lengths are padding."""
        b, k = feats.shape[:2]
        mask = (torch.arange(k, device=feats.device)[None, :] < lengths[:, None])[:, :, None]  # (B, K, 1)
        pe = sine_positions(k, self.d_pe, feats.device)[None].expand(b, -1, -1).masked_fill(~mask, 0.0)
        scores = self.linear(self.gru(pe, lengths)).masked_fill(~mask, -10000.0)  # (B, K, 1)
        weights = torch.softmax(scores / 0.1, dim=1)
        ranked = feats.masked_fill(~mask, -10000.0).sort(dim=1, descending=True)[0].masked_fill(~mask, 0.0)
        return (ranked * weights).sum(1)


def _word_embedding(vocab_size: int, word_dim: int) -> nn.Embedding:
    emb = nn.Embedding(vocab_size, word_dim, padding_idx=0)
    nn.init.uniform_(emb.weight, -0.1, 0.1)  # VSE++ / RVSE++ init
    return emb


class _WordTokenizer:
    @staticmethod
    def make_tokenizer(texts: Iterable[str], max_tokens: int = 32, **_: Any) -> Tokenizer:
        """A word-level vocabulary learned from the training captions (as the papers' vocab files)."""
        return build_tokenizer(texts, max_tokens)


@TEXT_ENCODERS.register("gru")
class GRUText(_WordTokenizer, nn.Module):
    """VSE++ text tower: word embeddings -> 1-layer GRU -> last valid state -> unit norm."""

    def __init__(self, vocab_size: int, embed_dim: int, word_dim: int = 300, **_: Any) -> None:
        super().__init__()
        self.embed = _word_embedding(vocab_size, word_dim)
        self.gru = nn.GRU(word_dim, embed_dim, batch_first=True)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) int64 ids and mask -> (B, E) unit-norm embeddings."""
        out = run_gru(self.gru, self.embed(input_ids))  # (B, L, E)
        last = (attention_mask.sum(1) - 1).clamp(min=0)  # (B,)
        return l2norm(out.gather(1, last[:, None, None].expand(-1, 1, out.shape[2])).squeeze(1))


@TEXT_ENCODERS.register("bigru_gpo")
class BiGRUGPOText(_WordTokenizer, nn.Module):
    """RVSE++ text tower: word embeddings -> BiGRU (directions averaged) -> GPO -> unit norm."""

    def __init__(self, vocab_size: int, embed_dim: int, word_dim: int = 300, **_: Any) -> None:
        super().__init__()
        self.embed = _word_embedding(vocab_size, word_dim)
        self.gru = BiGRUMean(word_dim, embed_dim)
        self.gpo = GPO()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        lengths = attention_mask.sum(1)  # (B,)
        return l2norm(self.gpo(self.gru(self.embed(input_ids), lengths), lengths))


def _xavier_fc(d_in: int, d_out: int) -> nn.Linear:
    fc = nn.Linear(d_in, d_out)
    r = math.sqrt(6.0) / math.sqrt(d_in + d_out)  # VSE++ / VSE∞ init_weights
    nn.init.uniform_(fc.weight, -r, r)
    nn.init.zeros_(fc.bias)
    return fc


class MaxPoolRegions(nn.Module):
    """VSE++ image tower as in ITM_CLS: FC(D -> E) per region, max over valid regions, unit norm."""

    def __init__(self, image_dim: int, embed_dim: int) -> None:
        super().__init__()
        self.fc = _xavier_fc(image_dim, embed_dim)

    def forward(self, regions: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """regions (B, K, D) float, lengths (B,) -> (B, E) unit norm."""
        x = self.fc(regions)  # (B, K, E)
        pad = torch.arange(x.shape[1], device=x.device)[None, :, None] >= lengths[:, None, None]
        return l2norm(x.masked_fill(pad, -10000.0).max(dim=1)[0])


class ResidualGPORegions(nn.Module):
    """RVSE++ image tower (§4c): FC(D -> E), x + MLP(x) with the VSE∞ 2-layer MLP (BN+ReLU), GPO, unit norm."""

    def __init__(self, image_dim: int, embed_dim: int) -> None:
        super().__init__()
        self.fc = _xavier_fc(image_dim, embed_dim)
        self.mlp1 = nn.Linear(embed_dim, embed_dim // 2)
        self.bn = nn.BatchNorm1d(embed_dim // 2)
        self.mlp2 = nn.Linear(embed_dim // 2, embed_dim)
        self.gpo = GPO()

    def forward(self, regions: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.fc(regions)  # (B, K, E)
        b, k, e = x.shape
        h = torch.relu(self.bn(self.mlp1(x.reshape(b * k, e))))  # (B*K, E/2): BN over all regions, as VSE∞
        x = self.mlp2(h).reshape(b, k, e) + x
        return l2norm(self.gpo(x, lengths))
