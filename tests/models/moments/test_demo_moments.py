"""The long-video demo moment set: lengths, event coverage, distractors, graded saliency, real mp4."""

import json
from pathlib import Path

import numpy as np
import pytest

from models.data.demo_moments import build_long_moments
from models.data.media import decode_video
from models.moments.data import read_qvhighlights


@pytest.fixture(scope="module")
def long_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("long")
    build_long_moments(out, 10, seed=1)
    return out


def test_videos_are_long_with_several_short_events(long_set: Path) -> None:
    rows = [r for s in ("train", "val", "test") for r in map(json.loads, (long_set / f"moments_{s}.jsonl").open())]
    by_vid: dict[str, list] = {}
    for r in rows:
        by_vid.setdefault(r["vid"], []).append(r)
    assert len(by_vid) == 10
    for vid, qs in by_vid.items():
        d = qs[0]["duration"]
        assert 30 <= d <= 150 and 3 <= len(qs) <= 5
        spans = sorted(r["relevant_windows"][0] for r in qs)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))  # events never overlap
        for s, e in spans:
            assert 0.05 * d - 0.5 <= e - s <= max(0.2 * d + 0.5, 1.5)
        words = [r["query"].split() for r in qs]  # "a <colour> <digit> <motion...>"
        assert len({r["query"] for r in qs}) == len(qs)
        for w in words:  # every event shares its digit or its colour with another event of the video
            assert any(o is not w and (o[1] == w[1] or o[2] == w[2]) for o in words), vid


def test_saliency_is_graded_and_peaks_inside(long_set: Path) -> None:
    qs = read_qvhighlights(long_set / "moments_train.jsonl", require_windows=True)
    scores = [np.array(q.row["saliency_scores"])[:, 0] for q in qs]
    assert {int(v) for s in scores for v in s} >= {1, 4}  # not all 4s: graded by visibility
    for s in scores:
        if len(s) >= 5:  # fades in and out: the edges score below the middle
            assert s[0] < s.max() and s[-1] < s.max()


def test_videos_decode_at_their_duration(long_set: Path) -> None:
    q = read_qvhighlights(long_set / "moments_val.jsonl")[0]
    frames, duration = decode_video(long_set / "videos" / f"{q.vid}.mp4", clip_rate=2.0, size=32)
    assert abs(duration - q.duration) < 1e-6 and len(frames) == int(q.duration * 2)
    manifest = [json.loads(ln) for ln in (long_set / "manifest.jsonl").open()]
    assert {m["id"] for m in manifest} >= {q.vid} and all(m["modality"] == "video" for m in manifest)
