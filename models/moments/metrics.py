"""Moment retrieval / highlight detection metrics, computed as the official QVHighlights evaluation does.

Ported from jayleicn/moment_detr ``standalone_eval/eval.py`` and ``standalone_eval/utils.py``
(MIT License, Copyright (c) 2021 Jie Lei; ``utils.py`` itself derives from MMAction2's
``eval_detection.py``, Apache-2.0). Written anew here; the algorithm and its quirks are kept so that the
numbers agree to two decimals:

- MR-R1@θ: the *first listed* window of each query against the GT window it overlaps most; the paired
  IoU uses ``max(ends) - min(starts)`` as the union (equal to the true union whenever they overlap).
- MR-mAP@θ: the first ``max_pred_windows`` (10) listed windows, then stably sorted by score; ActivityNet
  detection AP (each GT matched once), VOC all-point interpolation; θ = 0.5:0.05:0.95; "average" = mean.
- length buckets short (0, 10], middle (10, 30], long (30, 150] s keep the GT windows in range;
  ``full`` keeps everything. A bucket without GT is reported as ``{}`` (the official code crashes).
- HL-min-{Fair,Good,VeryGood}: clip positives are saliency ≥ 2, 3, 4 on a grid of ``clip_length`` s;
  HL-Hit1 = max over the 3 annotators of "the top predicted clip is positive"; HL-mAP = sklearn-PR AP with
  monotone precision, averaged over annotators and queries.
All values are percentages rounded to 2 decimals, like the official output.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from models.moments.data import GT_CLIP_S, MomentDataError

IOU_THDS = [round(float(x), 2) for x in np.linspace(0.5, 0.95, 10)]
BUCKETS = {"short": (0, 10), "middle": (10, 30), "long": (30, 150), "full": (0, 150)}


def _pct(x: float) -> float:
    return float(f"{100 * x:.2f}")


def iou_cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Temporal IoU of every window in ``a`` (N, 2) with every window in ``b`` (M, 2), seconds -> (N, M)."""
    inter = np.clip(np.minimum(a[:, None, 1], b[None, :, 1]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    union = (a[:, 1] - a[:, 0])[:, None] + (b[:, 1] - b[:, 0])[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union != 0)


def _iou_paired(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    inter = np.maximum(0, np.minimum(a[:, 1], b[:, 1]) - np.maximum(a[:, 0], b[:, 0]))
    union = np.maximum(a[:, 1], b[:, 1]) - np.minimum(a[:, 0], b[:, 0])  # the official "union"
    return np.divide(inter, union, out=np.zeros_like(inter), where=union != 0)


def _interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """VOC all-point interpolated AP."""
    p = np.hstack([[0.0], precision, [0.0]])
    r = np.hstack([[0.0], recall, [1.0]])
    for i in range(len(p) - 2, -1, -1):
        p[i] = max(p[i], p[i + 1])
    idx = np.where(r[1:] != r[:-1])[0] + 1
    return float(np.sum((r[idx] - r[idx - 1]) * p[idx]))


def detection_ap(gt: np.ndarray, preds: np.ndarray, thds: Sequence[float] = IOU_THDS) -> np.ndarray:
    """AP per IoU threshold for one query. gt (G, 2) s; preds (P, 3) [st, ed, score] -> (len(thds),)."""
    ap = np.zeros(len(thds))
    if len(preds) == 0:
        return ap
    preds = preds[np.argsort(-preds[:, 2], kind="stable")]
    tp = np.zeros((len(thds), len(preds)))
    fp = np.zeros_like(tp)
    lock = -np.ones((len(thds), len(gt)))
    ious = iou_cross(preds[:, :2], gt) if len(gt) else np.zeros((len(preds), 0))
    for i, row in enumerate(ious):
        order = row.argsort()[::-1]
        for t, thd in enumerate(thds):
            for j in order:
                if row[j] < thd:
                    break
                if lock[t, j] >= 0:
                    continue
                tp[t, i], lock[t, j] = 1, i
                break
            fp[t, i] = 1 - tp[t, i]
    tp_c, fp_c = np.cumsum(tp, 1), np.cumsum(fp, 1)
    recall = tp_c / max(len(gt), 1) if len(gt) else np.zeros_like(tp_c)
    precision = tp_c / (tp_c + fp_c)
    return np.array([_interpolated_ap(precision[t], recall[t]) for t in range(len(thds))])


def mr_map(sub: list[dict[str, Any]], gt: list[dict[str, Any]], max_pred: int = 10) -> dict[str, float]:
    """MR-mAP per IoU threshold (keys "0.5" ... "0.95") and "average", in %."""
    gt_by = {d["qid"]: np.asarray(d["relevant_windows"], float).reshape(-1, 2) for d in gt}
    aps = []
    for d in sub:
        preds = np.asarray(d["pred_relevant_windows"][:max_pred], float).reshape(-1, 3)
        aps.append(detection_ap(gt_by.get(d["qid"], np.zeros((0, 2))), preds))
    per_thd = np.mean(aps, 0)
    out = {str(t): _pct(v) for t, v in zip(IOU_THDS, per_thd, strict=True)}
    out["average"] = _pct(float(np.mean(per_thd)))
    return out


def mr_r1(sub: list[dict[str, Any]], gt: list[dict[str, Any]]) -> dict[str, float]:
    """MR-R1 per IoU threshold, in %: the first listed window vs the GT window it overlaps most."""
    top = {d["qid"]: np.asarray(d["pred_relevant_windows"][0][:2], float) for d in sub}
    gt_win = {}
    for d in gt:
        wins = np.asarray(d["relevant_windows"], float).reshape(-1, 2)
        best = int(np.argmax(iou_cross(top[d["qid"]][None], wins)[0])) if len(wins) else 0
        gt_win[d["qid"]] = wins[best]
    qids = list(top)
    ious = _iou_paired(np.stack([top[q] for q in qids]), np.stack([gt_win[q] for q in qids]))
    return {str(t): _pct(float(np.mean(ious >= t))) for t in IOU_THDS}


def _bucket(sub: list[dict[str, Any]], gt: list[dict[str, Any]], lo: float, hi: float) -> tuple[list, list]:
    if (lo, hi) == BUCKETS["full"]:
        return sub, gt
    kept = []
    for d in gt:
        wins = [w for w in d["relevant_windows"] if lo < w[1] - w[0] <= hi]
        if wins:
            kept.append({**d, "relevant_windows": wins})
    qids = {d["qid"] for d in kept}
    return [d for d in sub if d["qid"] in qids], kept


def eval_moment_retrieval(sub: list[dict[str, Any]], gt: list[dict[str, Any]]) -> dict[str, Any]:
    """``{bucket: {"MR-mAP": {...}, "MR-R1": {...}}}``; an empty bucket is ``{}``."""
    out: dict[str, Any] = {}
    for name, (lo, hi) in BUCKETS.items():
        s, g = _bucket(sub, gt, lo, hi)
        out[name] = {"MR-mAP": mr_map(s, g), "MR-R1": mr_r1(s, g)} if g and s else {}
    return out


def _get_ap(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Highlight AP of one annotator's binary labels, as the official ``get_ap`` (interpolate=True)."""
    from sklearn.metrics import precision_recall_curve

    if len(set(y_true.tolist())) == 1:
        return 0.0 if y_true[0] == 0 else 1.0
    precision, recall, _ = precision_recall_curve(y_true, y_pred)
    recall = recall.astype(np.float32)
    precision = np.maximum.accumulate(precision)  # the official forward max over the curve
    return float(np.mean(precision[np.where(np.diff(recall))]))


def gt_saliency(d: dict[str, Any], clip_length: float = GT_CLIP_S) -> np.ndarray:
    """(n_clips, 3) annotator scores in [0, 4] on the GT clip grid; n_clips = int(duration / clip_length)."""
    full = np.zeros((int(d["duration"] / clip_length), 3))
    ids = np.asarray(d["relevant_clip_ids"], int)
    scores = np.asarray(d["saliency_scores"], float)
    if problem := clip_ids_problem(ids, scores, len(full), clip_length):
        raise MomentDataError(f"qid {d['qid']!r} ({d['duration']} s): {problem}")
    full[ids] = scores.reshape(len(ids), 3)
    return full


def clip_ids_problem(ids: np.ndarray, scores: np.ndarray, n_clips: int, clip_length: float) -> str | None:
    """Why ``relevant_clip_ids`` / ``saliency_scores`` do not fit a video of ``n_clips`` GT clips, or None."""
    if scores.shape != (len(ids), 3):
        return f"saliency_scores of shape {scores.shape} for {len(ids)} relevant_clip_ids (3 annotators each)"
    if len(ids) and (ids.min() < 0 or ids.max() >= n_clips):
        return (
            f"relevant_clip_ids {ids.min()}..{ids.max()} outside the video's {n_clips} clips of {clip_length:g} s "
            f"(QVHighlights' grid: id i covers [{clip_length:g} i, {clip_length:g} (i + 1)) s)"
        )
    return None


def eval_highlight(
    sub: list[dict[str, Any]], gt: list[dict[str, Any]], clip_length: float = GT_CLIP_S
) -> dict[str, Any]:
    """``{"HL-min-Fair"|"HL-min-Good"|"HL-min-VeryGood": {"HL-mAP", "HL-Hit1"}}`` in %."""
    gt_by = {d["qid"]: gt_saliency(d, clip_length) for d in gt}
    out = {}
    for lo, name in ((2, "Fair"), (3, "Good"), (4, "VeryGood")):
        hits, aps = [], []
        for d in sub:
            labels = (gt_by[d["qid"]] >= lo).astype(float)  # (n_clips, 3)
            pred = np.asarray(d["pred_saliency_scores"], float)
            top = int(np.argmax(pred))
            hits.append(labels[top].max() if top < len(labels) else 0.0)
            fitted = np.zeros(len(labels))  # the official code trims or zero-pads to the GT length
            fitted[: min(len(pred), len(labels))] = pred[: len(labels)]
            aps.append([_get_ap(labels[:, w], fitted) for w in range(3)])
        out[f"HL-min-{name}"] = {"HL-mAP": _pct(float(np.mean(aps))), "HL-Hit1": _pct(float(np.mean(hits)))}
    return out


def eval_submission(
    sub: list[dict[str, Any]], gt: list[dict[str, Any]], clip_length: float = GT_CLIP_S
) -> dict[str, Any]:
    """The official output: ``{"brief": {...}, "full"/"short"/"middle"/"long": ..., "HL-min-*": ...}``.

    Only queries present in both files are scored (the official ``match_number=False``).
    """
    shared = {d["qid"] for d in sub} & {d["qid"] for d in gt}
    sub = [d for d in sub if d["qid"] in shared]
    gt = [d for d in gt if d["qid"] in shared]
    metrics: dict[str, Any] = {}
    brief: dict[str, float] = {}
    if sub and "pred_relevant_windows" in sub[0]:
        mr = eval_moment_retrieval(sub, gt)
        metrics.update(mr)
        full = mr["full"]
        brief.update(
            {
                "MR-full-mAP": full["MR-mAP"]["average"],
                "MR-full-mAP@0.5": full["MR-mAP"]["0.5"],
                "MR-full-mAP@0.75": full["MR-mAP"]["0.75"],
                "MR-short-mAP": mr["short"].get("MR-mAP", {}).get("average"),
                "MR-middle-mAP": mr["middle"].get("MR-mAP", {}).get("average"),
                "MR-long-mAP": mr["long"].get("MR-mAP", {}).get("average"),
                "MR-full-R1@0.5": full["MR-R1"]["0.5"],
                "MR-full-R1@0.7": full["MR-R1"]["0.7"],
            }
        )
        brief = dict(sorted(brief.items()))
    if sub and "pred_saliency_scores" in sub[0]:
        hl = eval_highlight(sub, gt, clip_length)
        metrics.update(hl)
        brief.update({f"{k}-{sk.split('-')[1]}": v for k, val in hl.items() for sk, v in val.items()})
    return {"brief": brief, **dict(sorted(metrics.items()))}


def charades_metrics(preds: np.ndarray, gts: np.ndarray) -> dict[str, float]:
    """Charades-STA: R1@{0.3,0.5,0.7} and mIoU (%) of top-1 windows ``preds`` (N, 2) vs ``gts`` (N, 2), seconds.

    The protocol code was not readable (METHODS.md §0.1); this is the usual definition: true IoU of the
    top-1 window with the single GT window, averaged over queries.
    """
    p, g = np.asarray(preds, float).reshape(-1, 2), np.asarray(gts, float).reshape(-1, 2)
    inter = np.clip(np.minimum(p[:, 1], g[:, 1]) - np.maximum(p[:, 0], g[:, 0]), 0, None)
    union = (p[:, 1] - p[:, 0]) + (g[:, 1] - g[:, 0]) - inter
    ious = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    out = {f"R1@{t}": _pct(float(np.mean(ious >= t))) for t in (0.3, 0.5, 0.7)}
    out["mIoU"] = _pct(float(np.mean(ious)))
    return out
