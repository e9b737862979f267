import numpy as np
import pytest

from models.metrics import gt_ranks, retrieval_metrics, t2v_v2t


def test_hand_worked_example() -> None:
    # 3 queries x 4 items; ground truth on columns 0, 1, 2.
    sim = np.array(
        [
            [0.9, 0.1, 0.2, 0.3],  # gt 0 ranks 0
            [0.5, 0.4, 0.6, 0.1],  # gt 1 ranks 2 (0.5 and 0.6 above)
            [0.1, 0.2, 0.0, 0.3],  # gt 2 ranks 3
        ]
    )
    ranks = gt_ranks(sim, np.array([0, 1, 2]))
    assert ranks.tolist() == [0, 2, 3]
    m = retrieval_metrics(ranks)
    assert m["R@1"] == pytest.approx(100 / 3)
    assert m["R@5"] == 100.0
    assert m["MdR"] == 3.0  # floor(median([0, 2, 3])) + 1
    assert m["MnR"] == pytest.approx(5 / 3 + 1)


def test_ties_do_not_reward_a_constant_scorer() -> None:
    m = t2v_v2t(np.zeros((10, 10)))["t2v"]
    assert m["R@1"] == 0.0 and m["MdR"] == 10.0


def test_perfect_diagonal() -> None:
    out = t2v_v2t(np.eye(5))
    assert out["t2v"]["R@1"] == out["v2t"]["R@1"] == 100.0
