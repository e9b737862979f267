"""Image-text losses on hand-worked examples (numbers derived in the comments)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models.imagetext.graded_losses import BCLS, Listwise, smooth_ndcg
from models.imagetext.losses import SelHN, TripletHN, TripletSum, Unified
from models.imagetext.metrics import ndcg

# rows = images, columns = captions; margin 0.2. Hinges [m + s_ij - s_ii]_+:
#   i2t row 0: (0.1, -)  row 1: (0.15, 0.25)  row 2: (0.1, 0)        -> max 0.1, 0.25, 0.1; sum 0.1, 0.4, 0.1
#   t2i col 0: (0, 0)    col 1: (0.4, 0)      col 2: (0, 0.15)       -> max 0, 0.4, 0.15;  sum the same
S = torch.tensor([[0.9, 0.8, 0.1], [0.55, 0.6, 0.65], [0.6, 0.4, 0.7]], dtype=torch.float64)


def test_triplet_hn_and_sum() -> None:
    hn = TripletHN(0.2)(S)
    assert hn["i2t"].item() == pytest.approx(0.45 / 3) and hn["t2i"].item() == pytest.approx(0.55 / 3)
    assert hn["loss"].item() == pytest.approx((0.45 + 0.55) / 6)
    assert TripletSum(0.2)(S)["loss"].item() == pytest.approx((0.6 + 0.55) / 6)


def test_selhn_takes_the_mean_branch_only_where_positive_and_hardest_negative_are_close() -> None:
    # |s_ii - max_j s_ij|: i2t rows 0.1, 0.05, 0.1; t2i columns 0.3, 0.2, 0.05. With eps 0.06 image 1
    # and caption 2 take the mean branch: i2t (0.1 + 0.4/2 + 0.1)/3, t2i (0 + 0.4 + 0.15/2)/3.
    out = SelHN(0.2, eps=0.06)(S)
    assert out["loss"].item() == pytest.approx((0.4 / 3 + 0.475 / 3) / 2)
    assert out["frac_all"].item() == pytest.approx(1 / 3) and out["frac_hard"].item() == pytest.approx(2 / 3)
    assert SelHN(0.2, eps=0.0)(S)["loss"].item() == pytest.approx(TripletHN(0.2)(S)["loss"].item())


def test_selhn_gradient_survives_where_triplet_hn_vanishes() -> None:
    """All embeddings nearly equal (the state at initialisation): HN's hinge gradient to the
    embeddings is ~0 after normalisation, SelHN's mean branch moves every pair apart."""
    torch.manual_seed(0)
    base = F.normalize(torch.randn(1, 8), dim=1)
    v = F.normalize(base + 1e-3 * torch.randn(6, 8), dim=1).requires_grad_()
    t = F.normalize(base + 1e-3 * torch.randn(6, 8), dim=1)
    out = SelHN(0.2, eps=0.01)(v @ t.t())
    assert out["frac_all"].item() == 1.0
    out["loss"].backward()
    assert v.grad is not None and v.grad.abs().sum() > 0


def test_unified_reduces_to_triplet_hn_as_tau_goes_to_zero() -> None:
    hn = TripletHN(0.2)(S)["loss"].item()
    gaps = [abs(Unified(0.2, tau)(S)["loss"].item() - hn) for tau in (0.1, 0.01, 1e-4)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-3  # bounded by tau * log(B)


@pytest.mark.parametrize("tau", [0.05, 0.5])
def test_unified_with_zero_margin_is_tau_times_infonce(tau: float) -> None:
    target = torch.arange(3)
    infonce = (F.cross_entropy(S / tau, target) + F.cross_entropy(S.t() / tau, target)) / 2
    assert Unified(0.0, tau)(S)["loss"].item() == pytest.approx(tau * infonce.item(), rel=1e-9)


# One anchor, candidates c0, c1, c2 with scores 0.9, 0.5, 0.7 and pseudo-labels 1.0, 0.8, 0.2; gap 0.3.
# Valid pairs (j above k): (c0, c2) costs [0.7 - 0.9]_+ = 0, (c1, c2) costs [0.7 - 0.5]_+ = 0.2.
A = torch.tensor([[0.9, 0.5, 0.7]])
R = torch.tensor([[1.0, 0.8, 0.2]])


@pytest.mark.parametrize(("window", "want"), [(None, 0.1), (1, 0.2), (2, 0.1)])
def test_bcls_kendall_with_and_without_the_sliding_window(window: int | None, want: float) -> None:
    # window 1: c0's window {c1} has no valid pair; c1's window {c2} costs 0.2 -> 0.2.
    # window 2: c0's window {c1, c2}: hardest valid costs 0; c1's costs 0.2 -> mean 0.1. None: ITM_CLS mean.
    assert BCLS(gap=0.3, window=window).kendall(A, R).item() == pytest.approx(want)


def test_bcls_soft_negatives_tend_to_the_hardest_negative() -> None:
    loss = BCLS(0.2, sn_tau=1e-4)
    assert loss.triplet_sn(S).item() == pytest.approx(0.45 / 3, abs=1e-6)
    assert BCLS(0.2, sn_tau=10.0).triplet_sn(S).item() < loss.triplet_sn(S).item()  # softer: towards the mean
    out = BCLS(0.2, window=None)(S, relevance=torch.eye(3, dtype=torch.float64))
    assert set(out) == {"loss", "triplet_sn", "kendall"}


def test_smooth_ndcg_matches_exact_ndcg_when_tau_is_small() -> None:
    # Ranking c0, c2, c1; gains 2^rel - 1 = 1, 0.414, 0. DCG = 1 + 0.414/log2(4); IDCG = 1 + 0.414/log2(3).
    rel = torch.tensor([[1.0, 0.5, 0.0]], dtype=torch.float64)
    want = (1 + (2**0.5 - 1) / 2) / (1 + (2**0.5 - 1) / torch.log2(torch.tensor(3.0)).item())
    assert smooth_ndcg(A.double(), rel, tau=1e-3).item() == pytest.approx(want, abs=1e-9)
    assert ndcg(A.numpy(), rel.numpy(), k=None) == pytest.approx(want)
    assert smooth_ndcg(A.double(), rel, tau=1.0).item() < want  # smoothing blurs the ranks


def test_listwise_mixes_triplet_hn_and_smooth_ndcg() -> None:
    r = torch.tensor([[1.0, 0.9, -0.2], [0.1, 1.0, 0.3], [0.0, 0.0, 1.0]], dtype=torch.float64)
    out = Listwise(0.2, tau=0.01, weight=0.25)(S, relevance=r)
    assert out["pair"].item() == pytest.approx(TripletHN(0.2)(S)["loss"].item())
    assert out["loss"].item() == pytest.approx(0.75 * out["pair"].item() + 0.25 * (1 - out["sndcg"].item()))
    assert 0 < out["sndcg"].item() < 1


@pytest.mark.parametrize("loss", [TripletHN(), TripletSum(), SelHN(), Unified(), BCLS(), Listwise()])
def test_every_loss_backpropagates_and_prefers_matched_pairs(loss: torch.nn.Module) -> None:
    good = torch.eye(6) * 0.8 + 0.1
    bad = (torch.ones(6, 6) * 0.5 - torch.eye(6) * 0.4).requires_grad_()
    out = loss(bad)
    out["loss"].backward()
    assert loss(good)["loss"] < out["loss"] and bad.grad is not None and bad.grad.abs().sum() > 0
