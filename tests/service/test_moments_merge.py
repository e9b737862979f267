"""Windowing, NMS and the seconds mapping of service/moments.py on hand-worked cases (no model)."""

from __future__ import annotations

import numpy as np
import pytest

from service.moments import _Merge, nms, temporal_iou, to_seconds, video_end, windows


def test_windows_cover_the_video_with_half_overlap() -> None:
    assert windows(3, 4) == [(0, 3)]
    assert windows(4, 4) == [(0, 4)]
    assert windows(10, 4) == [(0, 4), (2, 6), (4, 8), (6, 10)]
    assert windows(11, 4) == [(0, 4), (2, 6), (4, 8), (6, 10), (7, 11)]  # the last one ends at the video's end
    assert windows(5, 1) == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]


@pytest.mark.parametrize(("n", "span"), [(1, 1), (7, 3), (64, 64), (100, 64), (3600, 64), (129, 10)])
def test_every_event_of_half_a_span_lies_whole_in_a_window(n: int, span: int) -> None:
    ws = windows(n, span)
    assert ws[0][0] == 0 and ws[-1][1] == n and all(b - a == min(span, n) for a, b in ws)
    half = max(1, span // 2)
    for start in range(max(n - half, 0) + 1):
        assert any(a <= start and start + min(half, n) <= b for a, b in ws), start


def test_temporal_iou_hand_worked() -> None:
    got = temporal_iou(np.array([0.0, 10.0]), np.array([[1.0, 11.0], [10.0, 20.0], [2.0, 4.0]]))
    np.testing.assert_allclose(got, [9 / 11, 0.0, 2 / 10])


@pytest.mark.parametrize("small", [96, 0])  # the plain-float path and the array path
def test_nms_hand_worked(small: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("service.moments.SMALL_NMS", small)
    spans = np.array([[0, 10], [1, 11], [20, 30], [8, 18], [21, 29]], dtype=float)
    scores = np.array([0.9, 0.95, 0.5, 0.6, 0.5])
    # by score: #1 kept; #0 overlaps it 9/11 > 0.5: dropped; #3 overlaps it 3/17: kept;
    # #2 and #4 tie at 0.5, the earlier start (#2) goes first and is kept; #4 overlaps #2 8/10: dropped.
    assert nms(spans, scores, k=10) == [1, 3, 2]
    assert nms(spans, scores, k=2) == [1, 3]
    assert nms(spans, scores, k=10, iou=0.81) == [1, 3, 2, 4]  # 9/11 > 0.81 still dropped, 8/10 now kept
    assert nms(spans, scores, k=10, iou=0.9) == [1, 0, 3, 2, 4]
    assert nms(spans[[4, 2]], scores[[4, 2]], k=10) == [1]  # order of input does not matter for ties


@pytest.mark.parametrize("k", [1, 3, 50, 400])
def test_nms_float_and_array_paths_agree(k: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Short videos' plain-float NMS and long videos' array NMS keep the same spans, ties included."""
    import service.moments

    rng = np.random.default_rng(k)
    starts = rng.uniform(0, 100, 400)
    spans = np.stack([starts, starts + rng.uniform(0.5, 20, 400)], 1)
    scores = rng.choice(np.linspace(0, 1, 30), 400)  # many ties
    monkeypatch.setattr(service.moments, "SMALL_NMS", 10_000)
    floats = nms(spans, scores, k)
    monkeypatch.setattr(service.moments, "SMALL_NMS", 0)
    assert nms(spans, scores, k) == floats and len(floats) == min(k, len(floats))


def test_merge_maps_window_fractions_to_the_videos_seconds() -> None:
    m = _Merge(n_clips=10, duration=5.0, clip_rate=2.0)
    fractions = np.array([[[0.25, 0.75], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.5]]])  # (2 windows, Q = 2, 2)
    secs = to_seconds(fractions, np.array([4, 0]), np.array([4, 4]), 2.0, np.array([5.0, 5.0]))
    # window [4, 8) of 4 clips: fractions (0.25, 0.75) -> clips 5..7 -> 2.5..3.5 s; (0, 1) -> 2..4 s
    # window [0, 4): the whole window 0..2 s; (1.0, 0.5) is given reversed: still the interval 1..2 s
    np.testing.assert_allclose(secs, [[[2.5, 3.5], [2.0, 4.0]], [[0.0, 2.0], [1.0, 2.0]]])
    m.add(4, 8, secs[0], np.array([0.9, 0.2]), np.full(4, 3.0))
    m.add(0, 4, secs[1], np.array([0.4, 0.8]), np.ones(4))
    res = m.result(k=10)
    # 0..2 overlaps 1..2 by IoU 1/2 and 2..4 overlaps 2.5..3.5 by 1/2: not more than 0.5, so both are kept
    assert [(s.start, s.end, s.score) for s in res.moments] == [
        (2.5, 3.5, 0.9),
        (1.0, 2.0, 0.8),
        (0.0, 2.0, 0.4),
        (2.0, 4.0, 0.2),
    ]
    assert [(s.start, s.end) for s in m.result(k=2).moments] == [(2.5, 3.5), (1.0, 2.0)]
    np.testing.assert_allclose(res.saliency, [1, 1, 1, 1, 3, 3, 3, 3, 0, 0])


def test_merge_clips_to_the_video_and_drops_empty_spans() -> None:
    m = _Merge(n_clips=10, duration=4.6, clip_rate=2.0)  # the last clip is cut short by the video's end
    end = np.array([video_end(10, 4.6, 2.0)])  # 4.6 s
    secs = to_seconds(np.array([[[0.5, 1.0], [0.95, 1.0]]]), np.array([6]), np.array([4]), 2.0, end)
    np.testing.assert_allclose(secs[0], [[4.0, 4.6], [4.6, 4.6]])  # 4.75..5.0 s lies past the end: empty
    m.add(6, 10, secs[0], np.array([0.5, -np.inf]), np.ones(4))  # localize gives empty spans a score of -inf
    res = m.result(k=5)
    assert [(s.start, s.end) for s in res.moments] == [(4.0, 4.6)]
