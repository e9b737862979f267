"""Head outputs -> Moment-DETR submission rows (seconds), plus the trivial predictors for comparison.

A row is ``{qid, query, vid, pred_relevant_windows: [[start, end, score], ...] (seconds, best first),
pred_saliency_scores: [one per GT clip]}``. GT clips are ``gt_clip`` seconds (2 in QVHighlights); a
GT clip's saliency is the mean over the feature clips whose centres fall in it.

Post-processing (xmr's choice, the same for every head): windows sorted by score, then greedy
non-maximum suppression at IoU ``nms_iou`` (Moment-DETR's default is none; without it a sliding
window's top-10 would be near-copies of one window), at most ``max_windows`` kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer

from models.moments.batching import inputs
from models.moments.data import MomentQuery
from models.moments.metrics import iou_cross


def nms(windows: np.ndarray, iou: float, keep: int) -> np.ndarray:
    """Greedy NMS over (N, 3) [start, end, score] rows -> at most ``keep`` rows, best first."""
    rows = windows[np.argsort(-windows[:, 2], kind="stable")]
    kept: list[np.ndarray] = []
    for r in rows:
        if len(kept) >= keep:
            break
        if not kept or iou_cross(r[None, :2], np.stack(kept)[:, :2]).max() < iou:
            kept.append(r)
    return np.stack(kept) if kept else rows[:0]


def grid_saliency(sal: np.ndarray, duration: float, clip_rate: float, gt_clip: float) -> list[float]:
    """Feature-clip saliency (n,) -> one score per GT clip (``int(duration / gt_clip)`` of them)."""
    out = []
    for c in range(max(1, int(duration / gt_clip))):
        a, b = int(c * gt_clip * clip_rate), int((c + 1) * gt_clip * clip_rate)
        part = sal[a : max(b, a + 1)]
        out.append(float(part.mean()) if len(part) else float(sal[-1]))
    return out


def to_row(
    q: MomentQuery,
    spans: np.ndarray,
    scores: np.ndarray,
    sal: np.ndarray,
    n: int,
    clip_rate: float,
    nms_iou: float = 0.7,
    max_windows: int = 10,
    gt_clip: float = 2.0,
) -> dict[str, Any]:
    """One submission row from a head's outputs for one query on a video of ``n`` feature clips."""
    seconds = np.clip(spans * (n / clip_rate), 0.0, q.duration)  # (Q, 2)
    rows = np.concatenate([seconds, scores[:, None]], 1)
    rows = rows[rows[:, 1] > rows[:, 0]]
    rows = nms(rows, nms_iou, max_windows) if len(rows) else np.array([[0.0, q.duration, 0.0]])
    return {
        "qid": q.qid,
        "query": q.query,
        "vid": q.vid,
        "pred_relevant_windows": [[round(float(a), 4), round(float(b), 4), round(float(s), 4)] for a, b, s in rows],
        "pred_saliency_scores": [round(v, 4) for v in grid_saliency(sal[:n], q.duration, clip_rate, gt_clip)],
    }


@torch.no_grad()
def predict(
    head: torch.nn.Module,
    tok: Tokenizer,
    queries: list[MomentQuery],
    feats: dict[str, np.ndarray],
    clip_rate: float,
    batch_size: int = 64,
    **kw: Any,
) -> list[dict[str, Any]]:
    """Submission rows for ``queries`` (their videos' features in ``feats``)."""
    head.eval()
    rows = []
    for i in range(0, len(queries), batch_size):
        qs = queries[i : i + batch_size]
        spans, scores, sal = (o.numpy() for o in head(**inputs(tok, [q.query for q in qs], [feats[q.vid] for q in qs])))
        for j, q in enumerate(qs):
            rows.append(to_row(q, spans[j], scores[j], sal[j], len(feats[q.vid]), clip_rate, **kw))
    return rows


def trivial(queries: list[MomentQuery], kind: str, seed: int = 0, gt_clip: float = 2.0) -> list[dict[str, Any]]:
    """Trivial predictors: ``whole`` video, ``centre`` window (20 % of the video), ``random`` window
    (width 5-20 %, uniform start); saliency is flat (whole, centre) or random."""
    rng = np.random.default_rng(seed)
    rows = []
    for q in queries:
        d = q.duration
        if kind == "whole":
            w = [0.0, d]
        elif kind == "centre":
            w = [0.4 * d, 0.6 * d]
        else:
            width = rng.uniform(0.05, 0.2) * d
            start = rng.uniform(0, d - width)
            w = [start, start + width]
        n = max(1, int(d / gt_clip))
        sal = rng.random(n) if kind == "random" else np.zeros(n)
        rows.append(
            {
                "qid": q.qid,
                "query": q.query,
                "vid": q.vid,
                "pred_relevant_windows": [[*w, 1.0]],
                "pred_saliency_scores": [float(s) for s in sal],
            }
        )
    return rows
