"""``prota``: a text-video model after ProTA (arXiv 2404.12216), an xmr re-design from its abstract.

Token-level representations on both sides (text tokens from the registry's text tower, frame
tokens from the video tower), scored by ``ProTAScorer`` (DPA + TPA, models/videotext/scoring.py),
trained with ``L_all = L_contra + beta * L_kl`` [S], where L_contra is the adaptive contrastive loss
below (its margin is ours: the sources name an adaptive margin without a formula, NF).

Serving: the global vectors (mean of the unit tokens) go to FAISS; the token scores re-rank the top
candidates from the bundle's per-clip features, which for this model are its video tokens.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.dual_encoder import DualEncoder
from models.registry import LOSSES, MODELS
from models.videotext.scoring import ProTAScorer, pooled
from xmr.errors import ConfigError


@LOSSES.register("adaptive_infonce")
class AdaptiveInfoNCE(nn.Module):
    """Symmetric InfoNCE with an adaptive margin on each positive (the margin rule is ours).

    ``sim`` (B, B), matches on the diagonal. The positive logit of pair i is ``scale * (S_ii - m_i)``
    with ``m_i = margin * clamp(1 - sg(S_ii), 0, 1)``: pairs still far apart are pushed with the full
    margin, pairs already aligned with little, so a caption that covers only part of its video is
    not forced ever closer once it ranks well (the content-asymmetry idea of ProTA).
    """

    def __init__(self, temperature: float = 0.07, margin: float = 0.2, max_scale: float = 100.0) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))
        self.margin = margin
        self.max_scale = max_scale

    def forward(self, sim: torch.Tensor) -> dict[str, torch.Tensor]:
        scale = self.log_scale.exp().clamp(max=self.max_scale)
        pos = sim.diagonal()
        m = self.margin * (1 - pos.detach()).clamp(0, 1)  # (B,)
        logits = scale * (sim - torch.diag(m))  # (B, B)
        target = torch.arange(sim.shape[0], device=sim.device)
        t2v = F.cross_entropy(logits, target)
        v2t = F.cross_entropy(logits.t(), target)
        return {"loss": (t2v + v2t) / 2, "t2v": t2v.detach(), "v2t": v2t.detach(), "margin": m.mean().detach()}


@MODELS.register("prota")
class ProTA(DualEncoder):
    """Dual encoder whose pair score is token-level (``pair_scores``); ``encode_*`` give the FAISS vectors."""

    def __init__(self, cfg: dict[str, Any], vocab_size: int) -> None:
        super().__init__(cfg, vocab_size)
        if not hasattr(self.text, "encode_tokens"):
            raise ConfigError(
                f"prota needs a text encoder with per-token outputs; {cfg.get('text_encoder')!r} has none"
            )
        self.scorer = ProTAScorer(cfg["embed_dim"], lam=float(cfg.get("lam", 10.0)))
        self.loss = LOSSES.get(cfg["loss"])(temperature=cfg["temperature"], **cfg.get("loss_args", {}))
        self.beta = float(cfg.get("beta", 1e-3))

    def text_tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) -> (B, L, E) unit-norm token features."""
        return self.text.encode_tokens(input_ids, attention_mask)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) -> (B, E): mean of the unit tokens, renormalised (the query side of the FAISS stage)."""
        return pooled(self.text_tokens(input_ids, attention_mask), attention_mask)

    def encode_video(self, frames: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, S, S, 3) uint8 + (B, T) -> (global (B, E), tokens (B, T, E)), unit norm."""
        _, tokens = self.vision(frames, mask)
        return pooled(tokens, mask), tokens

    def pair_scores(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, tokens: torch.Tensor, token_mask: torch.Tensor
    ) -> torch.Tensor:
        """Texts (Bt, L) against videos' tokens (Bv, T, E) -> (Bt, Bv) ProTA scores in [-1, 1]."""
        t = self.text_tokens(input_ids, attention_mask)
        return self.scorer(t, attention_mask, tokens, token_mask)[0]

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        t = self.text_tokens(batch["input_ids"], batch["attention_mask"])
        _, v = self.encode_video(batch["frames"], batch["frame_mask"])
        sim, kl = self.scorer(t, batch["attention_mask"], v, batch["frame_mask"])
        out = self.loss(sim)
        out["kl"] = kl.detach()
        out["loss"] = out["loss"] + self.beta * kl
        return out

    @torch.no_grad()
    def score_matrix(self, ids: np.ndarray, mask: np.ndarray, tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """(Q, L) queries against N videos' tokens (N, T, E) with lengths (N,) -> (Q, N), in chunks."""
        tmask = (np.arange(tokens.shape[1])[None] < lengths[:, None]).astype(np.int64)
        t = self.text_tokens(torch.from_numpy(ids), torch.from_numpy(mask))
        out = []
        for i in range(0, len(tokens), 64):
            v = torch.from_numpy(tokens[i : i + 64])
            out.append(self.scorer(t, torch.from_numpy(mask), v, torch.from_numpy(tmask[i : i + 64]))[0].numpy())
        return np.concatenate(out, axis=1)
