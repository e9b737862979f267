"""ProTA's token scores and ViSERN's graph step against hand-worked and explicit (loop) oracles."""

import numpy as np
import pytest
import torch

from models.videotext.prota import AdaptiveInfoNCE
from models.videotext.scoring import SIGMAS, ProTAScorer, kl_to_prior, two_way
from models.videotext.visern import RandomWalkGCN, ViSERNVideo

torch.manual_seed(0)


def unit(*shape: int) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(*shape), dim=-1)


def test_two_way_hand_worked() -> None:
    # one text of 1 token, one video of 2 frames with similarities 1 and 0, lam = ln 3:
    # t->v: weights softmax(ln3 * [1, 0]) = [3/4, 1/4] -> 3/4; v->t: each frame has one token -> (1 + 0)/2.
    sim = torch.tensor([[[[1.0, 0.0]]]])  # (1, 1, L=1, T=2)
    got = two_way(sim, torch.ones(1, 1), torch.ones(1, 2), lam=float(np.log(3)))
    assert got.item() == pytest.approx((0.75 + 0.5) / 2)


def test_two_way_ignores_padding() -> None:
    sim = torch.rand(2, 3, 4, 5)
    t_mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    v_mask = torch.tensor([[1, 1, 1, 0, 0], [1] * 5, [1, 0, 0, 0, 0]])
    full = two_way(sim, t_mask, v_mask, 10.0)
    for a in range(2):
        for b in range(3):
            lt, lv = int(t_mask[a].sum()), int(v_mask[b].sum())
            alone = two_way(sim[a : a + 1, b : b + 1, :lt, :lv], torch.ones(1, lt), torch.ones(1, lv), 10.0)
            assert full[a, b].item() == pytest.approx(alone.item(), abs=1e-6)


def explicit_score(scorer: ProTAScorer, t: torch.Tensor, v: torch.Tensor) -> float:
    """One pair, every branch written out per token pair (the oracle for the batched einsums)."""
    e, lam = t.shape[-1], scorer.lam
    g = float(torch.nn.functional.normalize(t.mean(0), dim=0) @ torch.nn.functional.normalize(v.mean(0), dim=0))
    sd_t, sd_v = (0.5 * scorer.logvar_t(t)).exp(), (0.5 * scorer.logvar_v(v)).exp()
    s = np.zeros((len(t), len(v)))
    k = np.zeros_like(s)
    p = np.zeros_like(s)
    for i in range(len(t)):
        for j in range(len(v)):
            s[i, j] = float(t[i] @ v[j])
            k[i, j] = np.mean([np.exp(-float(((t[i] - v[j]) ** 2).sum()) / (2 * sg**2)) for sg in SIGMAS])
            w2 = float(((np.sqrt(e) * (t[i] - v[j])) ** 2).sum() + ((sd_t[i] - sd_v[j]) ** 2).sum())  # W2^2
            p[i, j] = 1 - w2 / (2 * e)

    def agg(x: np.ndarray) -> float:
        wr = np.exp(lam * x) / np.exp(lam * x).sum(1, keepdims=True)
        wc = np.exp(lam * x) / np.exp(lam * x).sum(0, keepdims=True)
        return ((x * wr).sum(1).mean() + (x * wc).sum(0).mean()) / 2

    return (g + agg(s) + 2 * agg(k) - 1 + agg(p)) / 4


def test_batched_scores_equal_the_per_pair_oracle() -> None:
    scorer = ProTAScorer(8)
    for head in (scorer.logvar_t, scorer.logvar_v):  # non-trivial variances
        torch.nn.init.normal_(head.weight, std=0.3)
        torch.nn.init.normal_(head.bias, std=0.3)
    t, v = unit(2, 3, 8), unit(3, 4, 8)
    with torch.no_grad():
        got, _ = scorer(t, torch.ones(2, 3), v, torch.ones(3, 4))
        for a in range(2):
            for b in range(3):
                assert got[a, b].item() == pytest.approx(explicit_score(scorer, t[a], v[b]), abs=1e-5)


def test_kl_is_its_minimum_at_the_prior_scale() -> None:
    mask = torch.ones(1, 4)
    at_prior = kl_to_prior(torch.ones(1, 4, 8), mask)
    assert at_prior.item() == pytest.approx(0.5)  # only the constant mean term remains
    assert kl_to_prior(torch.full((1, 4, 8), 0.1), mask) > at_prior
    assert kl_to_prior(torch.full((1, 4, 8), 3.0), mask) > at_prior


def test_adaptive_margin_shrinks_as_a_pair_aligns() -> None:
    loss = AdaptiveInfoNCE(temperature=0.1, margin=0.2)
    far = loss(torch.eye(4) * 0.2)["margin"]
    close = loss(torch.eye(4) * 0.9)["margin"]
    assert far.item() == pytest.approx(0.16) and close.item() == pytest.approx(0.02)


def test_random_walk_transition_is_row_stochastic_and_layer_starts_as_identity() -> None:
    layer = RandomWalkGCN(16).eval()
    v = torch.randn(3, 16, 16)
    p = layer.transition(v)
    assert p.shape == (3, 16, 16) and bool((p >= 0).all())
    torch.testing.assert_close(p.sum(-1), torch.ones(3, 16))
    with torch.no_grad():
        torch.testing.assert_close(layer(v), v)  # zero-initialised BN: residual identity at init


def test_visern_precomputed_regions_equal_the_frame_path() -> None:
    enc = ViSERNVideo(16, channels=[8, 16], width=32, layers=1, heads=2, max_frames=8).eval()
    frames = torch.randint(0, 255, (2, 3, 32, 32, 3), dtype=torch.uint8)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    with torch.no_grad():
        regions = enc.regions(frames.reshape(6, 32, 32, 3).permute(0, 3, 1, 2).float() / 255).reshape(2, 3, 16, 16)
        a = enc(frames, mask)
        b = enc.encode_features(regions, mask)
    torch.testing.assert_close(a[0], b[0])
    torch.testing.assert_close(a[1][mask > 0], b[1][mask > 0])


def test_prota_pair_scores_do_not_depend_on_padding() -> None:
    from models.factory import build_model, load_config

    model = build_model(load_config("prota_tiny"), vocab_size=30).eval()
    for head in (model.scorer.logvar_t, model.scorer.logvar_v):
        torch.nn.init.normal_(head.weight, std=0.3)
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])
    clips = unit(2, 5, 64)
    clip_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]])
    with torch.no_grad():
        both = model.pair_scores(ids, (ids > 0).long(), clips, clip_mask)
        alone = model.pair_scores(ids[1:, :2], torch.ones(1, 2, dtype=torch.long), clips[1:, :2], clip_mask[1:, :2])
    assert both[1, 1].item() == pytest.approx(alone[0, 0].item(), abs=1e-5)
