"""Image-text retrieval metrics as the public Flickr30K/MS-COCO evaluation computes them (METHODS.md §0.2).

``sims`` is (N images, 5N captions), caption c describes image c // 5. i2t: an image's rank is the
best rank among its 5 captions; t2i: a caption's rank is the rank of its one image. Ranks are
0-based; R@K = % of queries with rank < K; MedR = floor(median) + 1; MeanR = mean + 1;
rSum = the six recalls summed. COCO 1K = the average over 5 folds of 1,000 images (5,000
captions); 5K = all 5,000 at once. Ties count against the ground truth (a constant scorer must
not score well; the public code's argsort leaves them to the sort's order).
"""

from __future__ import annotations

import numpy as np

CAPS = 5
KS = (1, 5, 10)


def i2t_ranks(sims: np.ndarray, chunk: int = 256) -> np.ndarray:
    """(N,) 0-based rank of each image's best-ranked ground-truth caption."""
    n = sims.shape[0]
    out = np.empty(n, np.int64)
    for s in range(0, n, chunk):
        block = sims[s : s + chunk]  # (b, 5N)
        rows = np.arange(block.shape[0])
        gt_cols = (s + rows)[:, None] * CAPS + np.arange(CAPS)[None]  # (b, 5)
        gt = block[rows[:, None], gt_cols]  # (b, 5)
        is_gt = np.zeros(block.shape, bool)
        is_gt[rows[:, None], gt_cols] = True
        above = (block[:, None, :] > gt[:, :, None]).sum(2)  # (b, 5)
        tied = ((block[:, None, :] == gt[:, :, None]) & ~is_gt[:, None, :]).sum(2)
        out[s : s + len(rows)] = (above + tied).min(1)
    return out


def t2i_ranks(sims: np.ndarray) -> np.ndarray:
    """(5N,) 0-based rank of each caption's image."""
    scores = sims.T  # (5N, N)
    gt = np.arange(scores.shape[0]) // CAPS
    target = scores[np.arange(len(gt)), gt][:, None]
    return (scores > target).sum(1) + (scores == target).sum(1) - 1


def recall_stats(ranks: np.ndarray) -> dict[str, float]:
    out = {f"R@{k}": float(100.0 * np.mean(ranks < k)) for k in KS}
    out["MedR"] = float(np.floor(np.median(ranks)) + 1)
    out["MeanR"] = float(ranks.mean() + 1)
    return out


def evaluate_sims(sims: np.ndarray) -> dict[str, object]:
    """{"i2t": {R@1, R@5, R@10, MedR, MeanR}, "t2i": {...}, "rsum": float} on one (N, 5N) matrix."""
    if sims.shape[1] != CAPS * sims.shape[0]:
        raise ValueError(f"similarity matrix {sims.shape}: expected (N, {CAPS}N)")
    i2t, t2i = recall_stats(i2t_ranks(sims)), recall_stats(t2i_ranks(sims))
    return {"i2t": i2t, "t2i": t2i, "rsum": sum(i2t[f"R@{k}"] + t2i[f"R@{k}"] for k in KS)}


def evaluate_folds(sims: np.ndarray, fold: int = 1000) -> dict[str, object]:
    """COCO 1K protocol: metrics of each block of ``fold`` images (and their captions), averaged."""
    n = sims.shape[0]
    if n % fold:
        raise ValueError(f"{n} images do not split into folds of {fold}")
    runs = [evaluate_sims(sims[s : s + fold, CAPS * s : CAPS * (s + fold)]) for s in range(0, n, fold)]
    avg = {d: {m: float(np.mean([r[d][m] for r in runs])) for m in runs[0][d]} for d in ("i2t", "t2i")}  # type: ignore[index]
    return {**avg, "rsum": float(np.mean([r["rsum"] for r in runs])), "folds": len(runs)}


def ndcg(scores: np.ndarray, rel: np.ndarray, k: int | None = 10) -> float:
    """Mean NDCG@k over queries (rows): gains ``2^rel - 1``, discount ``log2(1 + rank)``, rank 1-based.

    ``scores`` and ``rel`` are (Q, M); tied scores are ordered least relevant first (pessimistic).
    Queries with no relevant item are skipped.
    """
    k = scores.shape[1] if k is None else min(k, scores.shape[1])
    disc = 1.0 / np.log2(2.0 + np.arange(k))  # rank 1 -> 1/log2(2)
    vals = []
    for s, r in zip(scores, rel, strict=True):
        gains = np.power(2.0, r) - 1
        ideal = np.sort(gains)[::-1][:k] @ disc
        if ideal <= 0:
            continue
        order = np.lexsort((gains, -s))[:k]  # by score descending, then gain ascending
        vals.append(gains[order] @ disc / ideal)
    return float(np.mean(vals)) if vals else float("nan")


def fact_relevance(image_facts: list[list[str]], caption_facts: list[list[str]]) -> np.ndarray:
    """(N, M) graded relevance: the fraction of caption m's facts that hold in image n."""
    vocab = {f: i for i, f in enumerate(sorted({f for fs in image_facts + caption_facts for f in fs}))}
    im = np.zeros((len(image_facts), len(vocab)), np.float32)
    cap = np.zeros((len(caption_facts), len(vocab)), np.float32)
    for mat, lists in ((im, image_facts), (cap, caption_facts)):
        for row, fs in enumerate(lists):
            mat[row, [vocab[f] for f in fs]] = 1.0
    return (im @ cap.T) / np.maximum(cap.sum(1), 1.0)[None, :]
