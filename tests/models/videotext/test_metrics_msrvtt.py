"""Video-text metrics against the MSR-VTT 1k-A reference formula (CLIP4Clip-family ``compute_metrics``)."""

import numpy as np
import pytest

from models.metrics import dual_softmax, gt_ranks, retrieval_metrics, t2v_v2t, t2v_v2t_dsl


def reference_compute_metrics(x: np.ndarray) -> dict[str, float]:
    """The CLIP4Clip-family formula, restated: rank = position of the diagonal in the sorted row."""
    sx = np.sort(-x, axis=1)
    d = np.diag(-x)[:, None]
    ind = np.where(sx - d == 0)[1]
    return {
        "R@1": float(np.sum(ind == 0)) * 100 / len(ind),
        "R@5": float(np.sum(ind < 5)) * 100 / len(ind),
        "R@10": float(np.sum(ind < 10)) * 100 / len(ind),
        "MdR": float(np.median(ind) + 1),
        "MnR": float(np.mean(ind) + 1),
    }


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n", [50, 200])
def test_equals_the_reference_formula_both_directions(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    sim = rng.standard_normal((n, n)) + 2 * np.eye(n) * rng.random(n)  # continuous: no ties
    got = t2v_v2t(sim)
    for direction, x in (("t2v", sim), ("v2t", sim.T)):
        want = reference_compute_metrics(x)
        assert got[direction] == pytest.approx(want)


def test_median_is_not_floored_hand_worked() -> None:
    # ranks 0, 1, 2, 3: median 1.5 -> MdR 2.5 (MSR-VTT); the VSE image-text convention would say 2.
    m = retrieval_metrics(np.array([0, 1, 2, 3]))
    assert m["MdR"] == 2.5
    assert m["MnR"] == 2.5
    assert m["R@1"] == 25.0


def test_floor_and_no_floor_disagree_often_on_random_1k_matrices() -> None:
    """The issue's observation: on random 1,000 x 1,000 matrices the two conventions often differ."""
    rng = np.random.default_rng(0)
    differ = 0
    for _ in range(20):
        ranks = gt_ranks(rng.standard_normal((1000, 1000)), np.arange(1000))
        differ += np.median(ranks) != np.floor(np.median(ranks))
    assert 0 < differ < 20


def test_dual_softmax_is_an_inference_trick_that_can_fix_a_hub_video() -> None:
    # video 0 is a "hub" close to every query; DSL discounts it because every query wants it.
    sim = np.array([[0.9, 0.1, 0.0], [0.8, 0.7, 0.1], [0.85, 0.2, 0.6]])
    assert t2v_v2t(sim)["t2v"]["R@1"] == pytest.approx(100 / 3)
    assert t2v_v2t(dual_softmax(sim, temperature=0.05))["t2v"]["R@1"] == 100.0


def test_dual_softmax_hand_worked() -> None:
    sim = np.array([[1.0, 0.0], [0.0, 1.0]])
    p = np.exp(1) / (np.exp(1) + 1)  # column softmax at temperature 1
    np.testing.assert_allclose(dual_softmax(sim, 1.0), [[2 * p, 0.0], [0.0, 2 * p]])


def test_dsl_runs_its_prior_over_the_retrieved_side_in_each_direction() -> None:
    # v2t: query 0 (a "hub" text) is the best text for every video; DSL over the texts of each video
    # is what fixes v2t, so the v2t result must use the transposed re-weighting.
    sim = np.array([[0.9, 0.8, 0.85], [0.1, 0.7, 0.2], [0.0, 0.1, 0.6]])
    assert t2v_v2t(sim)["v2t"]["R@1"] == pytest.approx(100 / 3)
    dsl = t2v_v2t_dsl(sim, temperature=0.05)
    assert dsl["v2t"]["R@1"] == 100.0
    assert dsl["t2v"] == t2v_v2t(dual_softmax(sim, 0.05))["t2v"]
