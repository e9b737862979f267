"""Image-text ranking losses of METHODS.md §4-§7. Each is an ``nn.Module`` returning named terms.

Convention: ``sim`` is (B, B) with ``sim[i, j] = v_i . t_j`` (image i, caption j), matched pairs on
the diagonal. Both directions are computed on an "anchor-major" view ``a`` (rows = anchors):
``a = sim`` for image->text, ``a = sim.T`` for text->image; every loss is
``1/2 (mean over image anchors + mean over caption anchors)`` as in the authors' code.
``relevance`` (optional, (B, B)): continuous pseudo-label ``R[i, j]`` = how well caption j
describes image i, 1 on the diagonal (caption-caption similarity, models/imagetext/relevance.py).
"""

from __future__ import annotations

import torch
from torch import nn

from models.registry import LOSSES


def directions(sim: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(image->text, text->image) anchor-major views of ``sim``."""
    return sim, sim.t()


def hinges(a: torch.Tensor, margin: float) -> torch.Tensor:
    """h[i, j] = [m + a_ij - a_ii]_+ for j != i, 0 on the diagonal: (B, B)."""
    eye = torch.eye(a.shape[0], dtype=torch.bool, device=a.device)
    return (margin + a - a.diag()[:, None]).clamp(min=0).masked_fill(eye, 0.0)


def _pair(i2t: torch.Tensor, t2i: torch.Tensor, **extra: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"loss": (i2t + t2i) / 2, "i2t": i2t.detach(), "t2i": t2i.detach(), **extra}


@LOSSES.register("triplet_hn")
class TripletHN(nn.Module):
    """VSE++ max-of-hinges: each anchor's hardest negative only."""

    def __init__(self, margin: float = 0.2) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, sim: torch.Tensor, relevance: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        i2t, t2i = (hinges(a, self.margin).max(dim=1)[0].mean() for a in directions(sim))
        return _pair(i2t, t2i)


@LOSSES.register("triplet_sum")
class TripletSum(nn.Module):
    """VSE0 sum of hinges: every negative of every anchor."""

    def __init__(self, margin: float = 0.2) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, sim: torch.Tensor, relevance: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        i2t, t2i = (hinges(a, self.margin).sum(dim=1).mean() for a in directions(sim))
        return _pair(i2t, t2i)


@LOSSES.register("selhn")
class SelHN(nn.Module):
    """SelHN (§4, RVSE++ ``TripletSelHNLoss``): the hardest negative, unless the positive and the hardest
    negative are within ``eps`` (the gradient-vanishing condition), then the mean over all negatives.

    Terms ``frac_hard`` / ``frac_all``: share of anchors (both directions) that took each branch.
    """

    def __init__(self, margin: float = 0.2, eps: float = 0.01) -> None:
        super().__init__()
        self.margin, self.eps = margin, eps

    def _direction(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = a.shape[0]
        h = hinges(a, self.margin)
        eye = torch.eye(b, dtype=torch.bool, device=a.device)
        hardest = a.detach().masked_fill(eye, float("-inf")).max(dim=1)[0]
        near = (a.diag().detach() - hardest).abs() < self.eps  # (B,) True: gradient would vanish
        per_anchor = torch.where(near, h.sum(dim=1) / (b - 1), h.max(dim=1)[0])
        return per_anchor.mean(), near.float().mean()

    def forward(self, sim: torch.Tensor, relevance: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        (i2t, near_i), (t2i, near_t) = (self._direction(a) for a in directions(sim))
        frac_all = (near_i + near_t) / 2
        return _pair(i2t, t2i, frac_all=frac_all, frac_hard=1 - frac_all)


@LOSSES.register("unified")
class Unified(nn.Module):
    """Unified pair-similarity loss (§7, MV-VSE ``UnifiedLoss`` single view):
    ``L_i = tau * log(1 + sum_{j != i} exp((a_ij - a_ii + m) / tau))``, the diagonal truly masked.

    tau -> 0 gives Triplet-HN; m = 0 gives tau * InfoNCE (tests/models/imagetext/test_losses.py).
    """

    def __init__(self, margin: float = 0.2, tau: float = 0.01) -> None:
        super().__init__()
        self.margin, self.tau = margin, tau

    def _direction(self, a: torch.Tensor) -> torch.Tensor:
        eye = torch.eye(a.shape[0], dtype=torch.bool, device=a.device)
        x = ((a - a.diag()[:, None] + self.margin) / self.tau).masked_fill(eye, float("-inf"))  # (B, B)
        one = torch.zeros_like(x[:, :1])  # the "1 +" inside the log: exp(0)
        return (self.tau * torch.logsumexp(torch.cat([one, x], dim=1), dim=1)).mean()

    def forward(self, sim: torch.Tensor, relevance: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        i2t, t2i = (self._direction(a) for a in directions(sim))
        return _pair(i2t, t2i)
