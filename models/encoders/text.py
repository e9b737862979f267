"""Text encoder: word embeddings -> transformer -> masked mean -> projection (unit norm)."""

from __future__ import annotations

import torch
from torch import nn

from models.encoders.blocks import SequenceEncoder, l2norm
from models.registry import TEXT_ENCODERS


@TEXT_ENCODERS.register("transformer")
class TextTransformer(nn.Module):
    def __init__(self, vocab_size: int, embed_dim: int, width: int, layers: int, heads: int, max_tokens: int) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, width, padding_idx=0)
        self.encoder = SequenceEncoder(width, layers, heads, max_tokens)
        self.proj = nn.Linear(width, embed_dim)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) int64 ids and mask -> (B, E) unit-norm embeddings."""
        pooled, _ = self.encoder(self.tokens(input_ids), attention_mask)
        return l2norm(self.proj(pooled))
