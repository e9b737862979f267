"""Retrieval metrics as the public benchmarks compute them (MSR-VTT 1k-A / VSE evaluation code).

Ranks are 0-based internally; R@K = % of queries whose ground truth ranks < K;
MdR = floor(median rank) + 1; MnR = mean rank + 1.
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
    ranks = np.asarray(ranks)
    out = {f"R@{k}": float(100.0 * np.mean(ranks < k)) for k in (1, 5, 10)}
    out["MdR"] = float(np.floor(np.median(ranks)) + 1)
    out["MnR"] = float(np.mean(ranks) + 1)
    return out


def t2v_v2t(sim: np.ndarray) -> dict[str, dict[str, float]]:
    """Square (N texts x N videos) similarity with matches on the diagonal (1k-A protocol)."""
    idx = np.arange(sim.shape[0])
    return {"t2v": retrieval_metrics(gt_ranks(sim, idx)), "v2t": retrieval_metrics(gt_ranks(sim.T, idx))}
