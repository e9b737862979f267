"""Video-text retrieval metrics as the MSR-VTT 1k-A evaluation code of the CLIP4Clip family computes them.

Ranks are 0-based internally; R@K = % of queries whose ground truth ranks < K; MnR = mean rank + 1;
MdR = median rank + 1 **without flooring** (CLIP4Clip-style ``np.median(ind) + 1``: an even number of
queries can give x.5). The image-text (VSE) convention floors the median; it lives with the
image-text metrics (models/imagetext/), not here.

One deliberate difference from that code: ties. ``np.where(sort(-x) - diag == 0)`` there gives a
tied ground truth its best (optimistic) position; here ties count against it, so a constant scorer
cannot score well. On continuous scores (no ties) the two agree exactly (tests/models/test_metrics.py).

Inference tricks (``dual_softmax``, DSL) are separate functions; results are reported without them
unless stated.
"""

from __future__ import annotations

import numpy as np


def gt_ranks(sim: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """0-based rank of each query's ground-truth column.

    sim: (Q, N) scores, higher is better; gt: (Q,) column index of each query's match.
    Ties count against the ground truth (pessimistic), as a constant scorer must not score well.
    """
    target = sim[np.arange(len(gt)), gt][:, None]
    return (sim > target).sum(1) + ((sim == target).sum(1) - 1)


def retrieval_metrics(ranks: np.ndarray) -> dict[str, float]:
    """R@1/5/10 (%), MdR (median + 1, not floored) and MnR (mean + 1) of 0-based ``ranks``."""
    ranks = np.asarray(ranks)
    out = {f"R@{k}": float(100.0 * np.mean(ranks < k)) for k in (1, 5, 10)}
    out["MdR"] = float(np.median(ranks) + 1)
    out["MnR"] = float(np.mean(ranks) + 1)
    return out


def t2v_v2t(sim: np.ndarray) -> dict[str, dict[str, float]]:
    """Square (N texts x N videos) similarity with matches on the diagonal (1k-A protocol)."""
    idx = np.arange(sim.shape[0])
    return {"t2v": retrieval_metrics(gt_ranks(sim, idx)), "v2t": retrieval_metrics(gt_ranks(sim.T, idx))}


def dual_softmax(sim: np.ndarray, temperature: float = 0.01) -> np.ndarray:
    """DSL inference re-weighting (CAMoE-style): ``sim * softmax(sim / temperature over the queries)``.

    sim (Q, N), queries on rows. Each video's column becomes a distribution over all test queries,
    so a query's score depends on the other queries: an inference trick, reported apart.
    """
    z = sim / temperature
    prior = np.exp(z - z.max(0, keepdims=True))
    prior /= prior.sum(0, keepdims=True)  # softmax over queries (axis 0), per video
    return sim * prior * len(sim)


def t2v_v2t_dsl(sim: np.ndarray, temperature: float = 0.01) -> dict[str, dict[str, float]]:
    """``t2v_v2t`` under DSL: t2v re-weights each video's column over the queries, v2t each query's
    row over the videos (the prior always runs over the side being retrieved against)."""
    idx = np.arange(sim.shape[0])
    t2v = retrieval_metrics(gt_ranks(dual_softmax(sim, temperature), idx))
    v2t = retrieval_metrics(gt_ranks(dual_softmax(sim.T, temperature), idx))
    return {"t2v": t2v, "v2t": v2t}
