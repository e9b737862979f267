"""Moment readers: the published formats read back, every malformed line refused with file, line and reason."""

import json
from pathlib import Path

import numpy as np
import pytest

from models.moments.data import (
    MomentDataError,
    check_vids,
    read_charades_sta,
    read_query_features,
    read_qvhighlights,
    read_video_features,
)
from xmr.errors import XmrError

ROW = {
    "qid": 7803,
    "query": "Man in gray top walks from outside to inside.",
    "duration": 150,
    "vid": "RoripwjYFp8_360.0_510.0",
    "relevant_clip_ids": [13, 14],
    "saliency_scores": [[4, 4, 2], [3, 4, 2]],
    "relevant_windows": [[26, 30]],
}


def _jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_qvhighlights_reads_records(tmp_path: Path) -> None:
    qs = read_qvhighlights(
        _jsonl(tmp_path / "hl.jsonl", [ROW, {**ROW, "qid": 1, "relevant_windows": [[0, 2], [4, 150]]}])
    )
    assert [q.qid for q in qs] == [7803, 1]
    assert qs[1].windows == [[0.0, 2.0], [4.0, 150.0]] and qs[0].duration == 150.0
    assert qs[0].row["saliency_scores"] == [[4, 4, 2], [3, 4, 2]]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({**ROW, "relevant_windows": [[140, 152]]}, "outside the video"),
        ({**ROW, "relevant_windows": [[30, 30]]}, "start >= end"),
        ({**ROW, "relevant_windows": [[-3, 2]]}, "outside the video"),
        ({k: v for k, v in ROW.items() if k != "vid"}, "not a QVHighlights record"),
        ("{not json", "not a QVHighlights record"),
        ({**ROW, "relevant_clip_ids": [74, 75]}, "relevant_clip_ids 74..75 outside the video's 75 clips of 2 s"),
        ({**ROW, "saliency_scores": [[4, 4, 2]]}, "saliency_scores of shape \\(1, 3\\) for 2 relevant_clip_ids"),
    ],
)
def test_qvhighlights_refusals_name_file_line_reason(tmp_path: Path, row: object, reason: str) -> None:
    path = _jsonl(tmp_path / "bad.jsonl", [ROW, row])
    with pytest.raises(MomentDataError, match=rf"bad.jsonl:2: .*{reason}"):
        read_qvhighlights(path)


def test_unknown_vid_refused_with_line(tmp_path: Path) -> None:
    qs = read_qvhighlights(_jsonl(tmp_path / "hl.jsonl", [ROW]))
    with pytest.raises(XmrError, match=r"hl.jsonl:1: unknown vid 'RoripwjYFp8_360.0_510.0'"):
        check_vids(qs, {"other"})


def test_charades_sta_lines(tmp_path: Path) -> None:
    path = tmp_path / "charades_sta_test.txt"
    path.write_text("3MSZA 24.3 30.4##person turn a light on.\nAO8RW 0.0 6.9##a person is putting a book on a shelf.\n")
    qs = read_charades_sta(path, {"3MSZA": 31.0, "AO8RW": 10.0})
    assert [(q.vid, q.windows, q.query) for q in qs][0] == ("3MSZA", [[24.3, 30.4]], "person turn a light on.")
    assert qs[1].qid == 1 and qs[1].duration == 10.0


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("3MSZA 24.3 40.0##late", "outside the video"),
        ("3MSZA 30.4 24.3##backwards", "start >= end"),
        ("ZZZZZ 1.0 2.0##who", "unknown vid 'ZZZZZ'"),
        ("3MSZA 1.0##no end", "expected 'vid start end##sentence'"),
        ("3MSZA a b##words", "not numbers"),
    ],
)
def test_charades_refusals(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "sta.txt"
    path.write_text(f"3MSZA 24.3 30.4##ok\n{line}\n")
    with pytest.raises(MomentDataError, match=rf"sta.txt:2: .*{reason}"):
        read_charades_sta(path, {"3MSZA": 31.0})


def test_moment_detr_feature_layout(tmp_path: Path) -> None:
    np.savez(tmp_path / "vidA.npz", features=np.ones((75, 8), np.float16))
    np.savez(tmp_path / "qid7803.npz", last_hidden_state=np.ones((12, 4), np.float32))
    assert read_video_features(tmp_path, "vidA").shape == (75, 8)
    assert read_video_features(tmp_path, "vidA").dtype == np.float32
    assert read_query_features(tmp_path, 7803).shape == (12, 4)
    with pytest.raises(MomentDataError, match=r"hl.jsonl:4: missing feature file .*vidB.npz"):
        read_video_features(tmp_path, "vidB", source="hl.jsonl:4")
    np.savez(tmp_path / "vidC.npz", other=np.ones(3))
    with pytest.raises(MomentDataError, match="none of the arrays"):
        read_video_features(tmp_path, "vidC")
