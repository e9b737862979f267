"""Moment metrics against hand-worked cases of the official QVHighlights evaluation's definitions."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models.moments.data import MomentDataError
from models.moments.metrics import charades_metrics, detection_ap, eval_submission, mr_r1

GT = [10.0, 20.0]


def _gt(qid, windows, duration=30.0, ids=(), scores=()):
    return {
        "qid": qid,
        "query": "q",
        "vid": f"v{qid}",
        "duration": duration,
        "relevant_windows": windows,
        "relevant_clip_ids": list(ids),
        "saliency_scores": [list(s) for s in scores],
    }


def _pred(qid, windows, sal=None):
    row = {"qid": qid, "query": "q", "vid": f"v{qid}", "pred_relevant_windows": windows}
    if sal is not None:
        row["pred_saliency_scores"] = sal
    return row


def test_ap_true_positive_ranked_first_or_second() -> None:
    gt = np.array([GT])
    assert detection_ap(gt, np.array([[10, 20, 0.9], [40, 50, 0.8]]))[0] == 1.0
    # FP first, then TP: precision (0, 1/2), recall (0, 1) -> all-point interpolated AP 0.5
    assert detection_ap(gt, np.array([[40, 50, 0.9], [10, 20, 0.8]]))[0] == pytest.approx(0.5)


def test_ap_sorts_by_score_and_matches_each_gt_once() -> None:
    gt = np.array([GT])
    # listed order FP, TP but the TP has the higher score -> ranked first -> AP 1
    assert detection_ap(gt, np.array([[40, 50, 0.1], [10, 20, 0.9]]))[0] == 1.0
    # two copies of the same TP: the second is a duplicate (FP) -> precision (1, 1/2), recall (1, 1): AP 1
    assert detection_ap(gt, np.array([[10, 20, 0.9], [10, 20, 0.8]]))[0] == 1.0


def test_map_over_thresholds_and_r1_uses_the_first_listed_window() -> None:
    # IoU([10, 18], [10, 20]) = 0.8: a hit for thresholds 0.5..0.8 (7 of 10), a miss for 0.85..0.95
    gt = [_gt(1, [GT])]
    out = eval_submission([_pred(1, [[10, 18, 0.1], [40, 50, 0.9]])], gt)
    full = out["full"]
    # ranked by score: FP then TP -> AP 0.5 at the 7 thresholds it passes -> average 35
    assert full["MR-mAP"]["0.5"] == 50.0 and full["MR-mAP"]["0.85"] == 0.0
    assert full["MR-mAP"]["average"] == 35.0
    # R1 takes the first *listed* window (IoU 0.8) whatever its score
    assert full["MR-R1"]["0.7"] == 100.0 and full["MR-R1"]["0.85"] == 0.0
    assert out["brief"]["MR-full-R1@0.5"] == 100.0 and out["brief"]["MR-full-mAP@0.75"] == 50.0


def test_only_the_first_ten_windows_count() -> None:
    windows = [[40 + i, 41 + i, 1.0 - i / 100] for i in range(10)] + [[10, 20, 0.001]]
    assert eval_submission([_pred(1, windows)], [_gt(1, [GT])])["full"]["MR-mAP"]["0.5"] == 0.0
    assert eval_submission([_pred(1, windows[-2:])], [_gt(1, [GT])])["full"]["MR-mAP"]["0.5"] == 50.0


def test_r1_pairs_with_the_best_overlapping_gt_window() -> None:
    gt = [_gt(1, [[0, 4], [10, 20]])]
    assert mr_r1([_pred(1, [[11, 20, 1.0]])], gt)["0.7"] == 100.0


def test_length_buckets_and_an_empty_bucket() -> None:
    gt = [_gt(1, [[10, 16]]), _gt(2, [[0, 25]])]  # a short (6 s) and a middle (25 s) window; no long one
    sub = [
        _pred(1, [[10, 16, 1.0]]),
        _pred(
            2,
            [[50, 60, 1.0]],
        ),
    ]
    out = eval_submission(sub, gt)
    assert out["short"]["MR-mAP"]["average"] == 100.0
    assert out["middle"]["MR-mAP"]["average"] == 0.0
    assert out["long"] == {} and out["brief"]["MR-long-mAP"] is None  # the official script crashes here
    assert out["full"]["MR-mAP"]["average"] == 50.0


def test_highlight_hand_worked() -> None:
    # 8 s video -> 4 GT clips of 2 s; clips 1 and 2 are relevant with 3 annotators' scores
    gt = [_gt(1, [[2, 6]], duration=8.0, ids=[1, 2], scores=[[4, 2, 0], [3, 4, 1]])]
    sub = [_pred(1, [[2, 6, 1.0]], sal=[0.1, 0.9, 0.5, 0.2])]
    out = eval_submission(sub, gt)
    # VeryGood (>= 4): annotator 0 positives {1} -> AP 1; annotator 1 {2} ranked 2nd -> AP 0.5; annotator 2 none -> 0
    assert out["HL-min-VeryGood"] == {"HL-mAP": 50.0, "HL-Hit1": 100.0}
    # Fair (>= 2): annotators 0 and 1 positives {1, 2} ranked 1st, 2nd -> AP 1; annotator 2 none -> 0
    assert out["HL-min-Fair"]["HL-mAP"] == pytest.approx(66.67)
    assert out["brief"]["HL-min-VeryGood-mAP"] == 50.0 and out["brief"]["HL-min-Good-Hit1"] == 100.0
    assert list(out) == ["brief", "HL-min-Fair", "HL-min-Good", "HL-min-VeryGood", "full", "long", "middle", "short"]


def test_saliency_ids_off_the_2s_grid_are_named_not_an_index_error() -> None:
    """A GT whose relevant_clip_ids are on another grid (e.g. 0.5-s clips) is refused with its qid and why."""
    gt = [_gt(1, [[2, 6]], duration=8.0, ids=[1, 9], scores=[[4, 2, 0], [3, 4, 1]])]
    with pytest.raises(MomentDataError, match=r"qid 1 \(8.0 s\): relevant_clip_ids 1..9 outside the video's 4 clips"):
        eval_submission([_pred(1, [[2, 6, 1.0]], sal=[0.1, 0.9, 0.5, 0.2])], gt)


def test_charades_r1_and_miou() -> None:
    preds = np.array([[0.0, 10.0], [0.0, 4.0], [20.0, 30.0]])
    gts = np.array([[0.0, 10.0], [0.0, 10.0], [0.0, 10.0]])  # IoU 1, 0.4, 0
    out = charades_metrics(preds, gts)
    assert out == {"R1@0.3": 66.67, "R1@0.5": 33.33, "R1@0.7": 33.33, "mIoU": pytest.approx(46.67)}


def test_cli_eval_official_format(tmp_path: Path) -> None:
    """``xmr moments eval`` on files in the official format (int qids, several windows, saliency)."""
    gt = [
        _gt(7803, [[26, 36], [40, 44]], duration=150, ids=[13, 14, 15], scores=[[4, 4, 2], [3, 4, 2], [2, 2, 3]]),
        _gt(9001, [[0, 150]], duration=150, ids=[0, 1], scores=[[1, 1, 1], [2, 2, 2]]),
    ]
    sal = [0.0] * 75
    sal[14] = 1.0
    sub = [
        _pred(7803, [[26, 36, 0.9], [40, 44, 0.8], [0, 10, 0.1]], sal),
        _pred(9001, [[0, 70, 0.5]], [1.0] + [0.0] * 74),
    ]
    (tmp_path / "gt.jsonl").write_text("".join(json.dumps(r) + "\n" for r in gt))
    (tmp_path / "sub.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sub))
    xmr = Path(sys.executable).parent / "xmr"
    res = subprocess.run(
        [
            str(xmr),
            "moments",
            "eval",
            "--submission",
            str(tmp_path / "sub.jsonl"),
            "--gt",
            str(tmp_path / "gt.jsonl"),
            "--out",
            str(tmp_path / "m.json"),
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    out = json.loads((tmp_path / "m.json").read_text())
    # 7803: both GT windows found first -> AP 1 everywhere; 9001: IoU 70/150 < 0.5 -> 0; mean 50
    assert out["brief"]["MR-full-mAP"] == 50.0 and out["brief"]["MR-full-R1@0.5"] == 50.0
    assert out["short"]["MR-R1"]["0.5"] == 100.0  # only 7803's 4-s window is short
    assert out["long"]["MR-mAP"]["0.5"] == 0.0  # only 9001's 150-s window is long
    # HIT@1 VeryGood: 7803's top clip 14 has scores (3, 4, 2) -> hit; 9001's clip 0 (1, 1, 1) -> miss
    assert out["HL-min-VeryGood"]["HL-Hit1"] == 50.0


def test_official_output_checker_passes_equal_output_and_names_a_difference(tmp_path: Path) -> None:
    """benchmarks/check_official_eval.py (the reviewers' check on Moment-DETR's sample files): exit 0 when
    every official value is ours, 1 naming the key when one differs or is missing."""
    gt = [_gt(1, [[10, 20]], ids=[5, 6], scores=[[4, 4, 4], [2, 2, 2]]), _gt(2, [[0, 8]], ids=[0], scores=[[3, 3, 3]])]
    sub = [_pred(1, [[10, 20, 0.9], [0, 5, 0.2]], [0.0] * 15), _pred(2, [[4, 30, 0.5]], [1.0] + [0.0] * 14)]
    for name, rows in (("gt.jsonl", gt), ("sub.jsonl", sub)):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    official = eval_submission(sub, gt)
    script = Path(__file__).resolve().parents[3] / "benchmarks" / "check_official_eval.py"

    def check(metrics: dict) -> subprocess.CompletedProcess[str]:
        (tmp_path / "official.json").write_text(json.dumps(metrics))
        args = ["--submission", str(tmp_path / "sub.jsonl"), "--gt", str(tmp_path / "gt.jsonl")]
        cmd = [sys.executable, str(script), *args, "--official", str(tmp_path / "official.json")]
        return subprocess.run(cmd, capture_output=True, text=True)

    same = check(official)
    assert same.returncode == 0 and "official values equal" in same.stdout, same.stdout + same.stderr
    official["brief"]["MR-full-mAP"] += 0.01
    official["HL-min-Fair"]["not ours"] = 1.0
    off = check(official)
    assert off.returncode == 1, off.stdout
    assert "brief/MR-full-mAP: ours" in off.stdout and "HL-min-Fair/not ours: ours missing" in off.stdout
