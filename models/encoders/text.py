"""Text encoder: word embeddings -> transformer -> masked mean -> projection (unit norm)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from tokenizers import Tokenizer
from torch import nn

from models.encoders.blocks import SequenceEncoder, l2norm
from models.registry import TEXT_ENCODERS
from models.tokenizer import build_tokenizer


@TEXT_ENCODERS.register("transformer")
class TextTransformer(nn.Module):
    def __init__(self, vocab_size: int, embed_dim: int, width: int, layers: int, heads: int, max_tokens: int) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, width, padding_idx=0)
        self.encoder = SequenceEncoder(width, layers, heads, max_tokens)
        self.proj = nn.Linear(width, embed_dim)

    @staticmethod
    def make_tokenizer(texts: Iterable[str], max_tokens: int = 32, **_: Any) -> Tokenizer:
        """A word-level vocabulary learned from the training captions."""
        return build_tokenizer(texts, max_tokens)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) int64 ids and mask -> (B, E) unit-norm embeddings."""
        pooled, _ = self.encoder(self.tokens(input_ids), attention_mask)
        return l2norm(self.proj(pooled))

    def encode_tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) ids and mask -> (B, L, E) unit-norm per-token features (token-level models, e.g. ProTA)."""
        _, steps = self.encoder(self.tokens(input_ids), attention_mask)
        return l2norm(self.proj(steps))

    def encode_both(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward`` and ``encode_tokens`` from one pass of the encoder: (B, E) and (B, L, E), unit norm."""
        pooled, steps = self.encoder(self.tokens(input_ids), attention_mask)
        return l2norm(self.proj(pooled)), l2norm(self.proj(steps))
