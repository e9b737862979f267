"""Image-text metrics on hand-worked examples (the Flickr30K/COCO evaluation's definitions)."""

from __future__ import annotations

import numpy as np
import pytest

from models.imagetext.metrics import evaluate_folds, evaluate_sims, fact_relevance, i2t_ranks, ndcg, recall_stats

# 2 images x 10 captions (captions 0-4 describe image 0, 5-9 image 1).
SIMS = np.array(
    [
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.0, 0.0, 0.0, 0.0],  # best own caption (0.5) is beaten by caption 5: rank 1
        [0.9, 0.0, 0.0, 0.0, 0.0, 0.8, 0.1, 0.1, 0.1, 0.1],  # best own caption (0.8) is beaten by caption 0: rank 1
    ]
)


def test_hand_worked_i2t_t2i_and_rsum() -> None:
    m = evaluate_sims(SIMS)
    # i2t ranks (1, 1): R@1 0, R@5 100, MedR floor(1) + 1 = 2, MeanR 2.
    assert m["i2t"] == {"R@1": 0.0, "R@5": 100.0, "R@10": 100.0, "MedR": 2.0, "MeanR": 2.0}
    # t2i: caption 0 scores (0.1, 0.9): its image 0 ranks 1; the nine others rank 0.
    assert m["t2i"] == {"R@1": 90.0, "R@5": 100.0, "R@10": 100.0, "MedR": 1.0, "MeanR": pytest.approx(1.1)}
    assert m["rsum"] == pytest.approx(490.0)


def test_ties_count_against_the_ground_truth_but_not_among_its_own_captions() -> None:
    m = evaluate_sims(np.zeros((2, 10)))
    assert i2t_ranks(np.zeros((2, 10))).tolist() == [5, 5]  # the 5 other captions tie ahead; own ones do not
    assert m["i2t"]["R@5"] == 0.0 and m["i2t"]["R@10"] == 100.0 and m["t2i"]["R@1"] == 0.0


def test_median_rank_is_floor_of_the_median_plus_one() -> None:
    assert recall_stats(np.array([0, 1, 4, 5]))["MedR"] == 3.0  # median 2.5
    assert recall_stats(np.array([0, 3]))["MeanR"] == 2.5


def test_folds_average_the_per_fold_metrics() -> None:
    rng = np.random.default_rng(0)
    sims = rng.normal(size=(4, 20))
    folds = evaluate_folds(sims, fold=2)
    parts = [evaluate_sims(sims[:2, :10]), evaluate_sims(sims[2:, 10:])]
    assert folds["folds"] == 2
    assert folds["rsum"] == pytest.approx((parts[0]["rsum"] + parts[1]["rsum"]) / 2)
    assert folds["t2i"]["R@1"] == pytest.approx((parts[0]["t2i"]["R@1"] + parts[1]["t2i"]["R@1"]) / 2)
    with pytest.raises(ValueError, match="folds of 3"):
        evaluate_folds(sims, fold=3)


def test_ndcg_with_graded_relevance() -> None:
    scores = np.array([[0.9, 0.5, 0.7]])
    rel = np.array([[1.0, 0.5, 0.0]])  # gains 1, 0.414, 0; ranked c0, c2, c1
    g = 2**0.5 - 1
    assert ndcg(scores, rel, k=1) == pytest.approx(1.0)
    assert ndcg(scores, rel, k=2) == pytest.approx(1 / (1 + g / np.log2(3)))
    assert ndcg(scores, rel, k=None) == pytest.approx((1 + g / 2) / (1 + g / np.log2(3)))
    assert ndcg(np.zeros((1, 3)), rel, k=1) == pytest.approx(0.0)  # ties: least relevant first


def test_fact_relevance_is_the_share_of_a_captions_facts_the_image_shows() -> None:
    rel = fact_relevance([["a", "b"], ["b"]], [["a", "b"], ["b", "c"]])
    np.testing.assert_allclose(rel, [[1.0, 0.5], [0.5, 0.5]])
