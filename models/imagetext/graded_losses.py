"""Losses with continuous pseudo-labels: BCLS (METHODS.md §5) and listwise S-NDCG (§6).

Conventions as in ``models/imagetext/losses.py``. ``relevance`` R (B, B) is the caption-caption
similarity pseudo-label ``R[i, j] = max_k cos(e(c_{i,k}), e(c_j))`` with ``R[i, i] = 1``; without
it every off-diagonal pair counts as unrelated (R = I). For text->image anchors xmr uses R.T (the
logical reading; the released code reuses R untransposed) - our choice, labelled in docs/results.md.
"""

from __future__ import annotations

import torch
from torch import nn

from models.imagetext.losses import TripletHN, directions, hinges
from models.registry import LOSSES


def _relevance(sim: torch.Tensor, relevance: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    r = torch.eye(sim.shape[0], device=sim.device) if relevance is None else relevance
    return r, r.t()


@LOSSES.register("bcls")
class BCLS(nn.Module):
    """Triplet-SN + Kendall ranking loss on pseudo-labels with SW-HS sampling.

    From the code (ITM_CLS ``RCLoss``): a pair (j, k) of anchor i is valid when ``R_ij - R_ik > gap``
    and costs ``[a_ik - a_ij]_+``; Kendall weight 1. Ours (the paper's formulas were not readable):
    - Triplet-SN: hinges weighted by a softmax over the anchor's hinges at temperature ``sn_tau``
      (detached): a soft version of the hardest negative (-> Triplet-HN as sn_tau -> 0).
    - SW-HS: rank the anchor's candidates by R; each candidate is compared only with the next
      ``window`` candidates in that order (sliding window; cost O(B^2 w) per batch, not O(B^3)),
      and of the valid pairs in its window only the most violated one counts (hard sample).
      ``window=None`` is ITM_CLS's Kendall loss: every valid pair, averaged.
    """

    def __init__(
        self, margin: float = 0.2, gap: float = 0.3, sn_tau: float = 0.1, window: int | None = 8, weight: float = 1.0
    ) -> None:
        super().__init__()
        self.margin, self.gap, self.sn_tau, self.window, self.weight = margin, gap, sn_tau, window, weight

    def triplet_sn(self, a: torch.Tensor) -> torch.Tensor:
        h = hinges(a, self.margin)
        eye = torch.eye(a.shape[0], dtype=torch.bool, device=a.device)
        w = torch.softmax((h.detach() / self.sn_tau).masked_fill(eye, float("-inf")), dim=1)
        return (w * h).sum(dim=1).mean()

    def kendall(self, a: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """Kendall hinge of one direction: anchors are rows of ``a`` (scores) and ``r`` (pseudo-labels)."""
        if self.window is None:
            valid = (r[:, :, None] - r[:, None, :]) > self.gap  # (B, j, k): j should outrank k
            cost = (a[:, None, :] - a[:, :, None]).clamp(min=0)  # (B, j, k) = [a_ik - a_ij]_+
            return (cost * valid).sum() / valid.sum().clamp(min=1)
        order = r.argsort(dim=1, descending=True)  # (B, B)
        rs, as_ = r.gather(1, order), a.gather(1, order)
        b = a.shape[1]  # candidates per anchor
        pos = torch.arange(b, device=a.device)
        idx = pos[:, None] + 1 + torch.arange(self.window, device=a.device)[None, :]  # (B, W) window after p
        inside = idx < b
        idx = idx.clamp(max=b - 1)
        valid = inside[None] & ((rs[:, :, None] - rs[:, idx]) > self.gap)  # (B, P, W)
        cost = ((as_[:, idx] - as_[:, :, None]).clamp(min=0) * valid).max(dim=2)[0]  # (B, P) hardest in window
        has = valid.any(dim=2)
        return (cost * has).sum() / has.sum().clamp(min=1)

    def forward(self, sim: torch.Tensor, relevance: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        rel = _relevance(sim, relevance)
        (a_i, a_t), (r_i, r_t) = directions(sim), rel
        sn = (self.triplet_sn(a_i) + self.triplet_sn(a_t)) / 2
        kendall = (self.kendall(a_i, r_i) + self.kendall(a_t, r_t)) / 2
        return {"loss": sn + self.weight * kendall, "triplet_sn": sn.detach(), "kendall": kendall.detach()}


def smooth_ndcg(a: torch.Tensor, gain_rel: torch.Tensor, tau: float) -> torch.Tensor:
    """Per-anchor S-NDCG (B,) of scores ``a`` (B, N) against graded relevance ``gain_rel`` (B, N) in [0, 1].

    Smooth rank ``1 + sum_{k != j} sigmoid((a_ik - a_ij) / tau)`` (exponent clamped to +-50);
    gains ``2^rel - 1`` and discount ``log2(1 + rank)``, IDCG from the exact ideal ranks.
    """
    gains = torch.pow(2.0, gain_rel) - 1
    ideal = 1 + (gain_rel[:, None, :] > gain_rel[:, :, None]).sum(dim=2)  # (B, N): 1 + #{k: R_ik > R_ij}
    idcg = (gains / torch.log2(1.0 + ideal.float())).sum(dim=1)
    diff = ((a[:, None, :] - a[:, :, None]) / tau).clamp(-50, 50)  # (B, j, k) = (a_ik - a_ij) / tau
    eye = torch.eye(a.shape[1], dtype=torch.bool, device=a.device)
    rank = 1 + torch.sigmoid(diff).masked_fill(eye, 0.0).sum(dim=2)  # (B, N)
    return (gains / torch.log2(1.0 + rank)).sum(dim=1) / idcg


@LOSSES.register("listwise")
class Listwise(nn.Module):
    """Triplet-HN + Smooth-NDCG with RSC relevance (Listwise_ITR ``TripletSNDCGLoss``):
    ``L = (1 - w) L_pair + w L_list``, RSC ``(1 + R) / 2`` with the diagonal 1, tau = 0.01.

    ``weight`` w is missing from the released training script; 0.5 is ours.
    """

    def __init__(self, margin: float = 0.2, tau: float = 0.01, weight: float = 0.5) -> None:
        super().__init__()
        self.pair = TripletHN(margin)
        self.tau, self.weight = tau, weight

    def forward(self, sim: torch.Tensor, relevance: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        eye = torch.eye(sim.shape[0], dtype=torch.bool, device=sim.device)
        rel = ((1 + _relevance(sim, relevance)[0]) / 2).masked_fill(eye, 1.0)  # RSC
        nd_i = smooth_ndcg(sim, rel, self.tau).mean()
        nd_t = smooth_ndcg(sim.t(), rel.t(), self.tau).mean()
        pair = self.pair(sim)["loss"]
        lst = 1 - (nd_i + nd_t) / 2
        return {"loss": (1 - self.weight) * pair + self.weight * lst, "pair": pair.detach(), "sndcg": 1 - lst.detach()}
