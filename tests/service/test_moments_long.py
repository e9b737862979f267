"""Any length: a 30-minute video (real mp4, trained-run clip features) whose event happens only at minute 21."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

import bundle
import service.moments
from tests.long_video_bundle import LongVideo, build_long_bundle
from tests.service.test_api import client_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def long_video(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> LongVideo:
    return build_long_bundle(tmp_path_factory.mktemp("long"), trained_run)


@pytest.fixture(scope="module")
def client(long_video: LongVideo) -> Iterator[TestClient]:
    with client_for(long_video.root) as c:
        yield c


def overlaps(m: dict[str, float], event: tuple[float, float]) -> bool:
    return m["start"] < event[1] and m["end"] > event[0]


def test_top_moment_of_a_30_minute_video_is_at_minute_21(client: TestClient, long_video: LongVideo) -> None:
    r = client.post("/v1/moments", json={"query": long_video.query, "video_id": long_video.video_id, "k": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["duration"] == pytest.approx(1800.0) and len(body["saliency"]) == 3600
    top = body["moments"][0]
    assert overlaps(top, long_video.event), (top, long_video.event)
    assert top["end"] - top["start"] <= 32.0  # a moment, not a chunk of the video
    # the per-clip saliency peaks inside the event too
    best = max(body["saliency"], key=lambda s: s["score"])
    assert overlaps(best, (long_video.event[0] - 2, long_video.event[1] + 2)), best


def test_clips_are_streamed_window_by_window(
    client: TestClient, long_video: LongVideo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No read of more than one window of clips, and chunking the windows changes nothing."""
    reads: list[int] = []
    window = bundle.ClipStore.window

    def spy(self: bundle.ClipStore, row: int, a: int, b: int) -> np.ndarray:
        reads.append(b - a)
        return window(self, row, a, b)

    monkeypatch.setattr(bundle.ClipStore, "window", spy)
    monkeypatch.setattr(bundle.ClipStore, "clips", lambda *_: pytest.fail("whole video read"))
    req = {"query": long_video.query, "video_id": long_video.video_id, "k": 5}
    whole = client.post("/v1/moments", json=req).json()
    assert max(reads) == 64 and len(reads) == len(service.moments.windows(3600, 64))
    monkeypatch.setattr(service.moments, "MAX_WINDOWS", 7)  # many small ONNX calls instead of one
    chunked = client.post("/v1/moments", json=req).json()
    assert chunked["moments"] == whole["moments"]
    np.testing.assert_allclose([s["score"] for s in chunked["saliency"]], [s["score"] for s in whole["saliency"]])


def test_search_hit_moments_come_from_the_matched_segment_only(
    client: TestClient, long_video: LongVideo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search hit on the 30-minute video carries its matched segment; its moments are localized in the
    head's windows around that segment (two or three of them), not in all of the video's windows."""
    reads: list[tuple[int, int]] = []
    window = bundle.ClipStore.window

    def spy(self: bundle.ClipStore, row: int, a: int, b: int) -> np.ndarray:
        reads.append((a, b))
        return window(self, row, a, b)

    monkeypatch.setattr(bundle.ClipStore, "window", spy)
    body = {"query": long_video.query, "k": 1, "collection": long_video.collection, "moments": 3}
    (hit,) = client.post("/v1/search", json=body).json()["hits"]
    seg = hit["segment"]
    assert seg is not None and overlaps(seg, long_video.event), seg
    assert 1 <= len(reads) <= 3 and len(reads) < len(service.moments.windows(3600, 64))
    assert all(a < seg["end"] * 2 and b > seg["start"] * 2 for a, b in reads)  # 2 clips/s: each read overlaps it
    assert hit["moments"] and overlaps(hit["moments"][0], long_video.event), (hit["moments"], long_video.event)
