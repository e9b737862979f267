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
    windows = bundle.ClipStore.windows

    def spy(self: bundle.ClipStore, spans: list[tuple[int, int, int]]) -> tuple[np.ndarray, ...]:
        reads.extend(b - a for _, a, b in spans)
        return windows(self, spans)

    monkeypatch.setattr(bundle.ClipStore, "windows", spy)
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
    windows = bundle.ClipStore.windows

    def spy(self: bundle.ClipStore, spans: list[tuple[int, int, int]]) -> tuple[np.ndarray, ...]:
        reads.extend((a, b) for _, a, b in spans)
        return windows(self, spans)

    monkeypatch.setattr(bundle.ClipStore, "windows", spy)
    body = {"query": long_video.query, "k": 1, "collection": long_video.collection, "moments": 3}
    (hit,) = client.post("/v1/search", json=body).json()["hits"]
    seg = hit["segment"]
    assert seg is not None and overlaps(seg, long_video.event), seg
    assert 1 <= len(reads) <= 3 and len(reads) < len(service.moments.windows(3600, 64))
    assert all(a < seg["end"] * 2 and b > seg["start"] * 2 for a, b in reads)  # 2 clips/s: each read overlaps it
    assert hit["moments"] and overlaps(hit["moments"][0], long_video.event), (hit["moments"], long_video.event)


def test_remote_moments_of_a_long_hit_look_around_its_segment_too(client: TestClient, long_video: LongVideo) -> None:
    """With XMR_MOMENTS_URL the search service sends each hit's matched segment to a real `xmr serve-moments`
    (POST /v1/moments/batch, ``{id, segment}`` entries), which looks only around it, as the in-process head does."""
    import httpx

    from service.remote_moments import CircuitBreaker, RemoteMoments
    from service.schemas import Segment
    from tests.harness import free_port, start_server
    from tests.service.test_moments_remote import start_moments

    body = {"query": long_video.query, "k": 1, "collection": long_video.collection, "moments": 3}
    (local,) = client.post("/v1/search", json=body).json()["hits"]
    port = free_port()
    moments = start_moments(long_video.root, port)
    search, url = start_server(long_video.root, XMR_MOMENTS_URL=f"http://127.0.0.1:{port}")
    batch = f"http://127.0.0.1:{port}/v1/moments/batch"
    try:
        got = httpx.post(f"{url}/v1/search", json=body, timeout=30).json()
        assert got["moments_error"] is None
        (hit,) = got["hits"]
        assert hit["segment"] == local["segment"] and hit["moments"] == local["moments"]
        # a segment at minute 5 (a distractor): every moment comes from the windows around it
        whole = {"query": long_video.query, "video_ids": [long_video.video_id], "k": 3, "collection": "long"}
        around = (300.0 - 32.0, 332.0 + 32.0)  # the segment widened by half a 64-clip window each side
        ref = {"id": long_video.video_id, "segment": {"start": 300.0, "end": 332.0}}
        focused = httpx.post(batch, json=whole | {"video_ids": [ref]}, timeout=30).json()
        assert all(around[0] <= m["start"] and m["end"] <= around[1] for m in focused["moments"][0]), focused
        unfocused = httpx.post(batch, json=whole, timeout=30).json()
        assert overlaps(unfocused["moments"][0][0], long_video.event), unfocused
        remote = RemoteMoments(f"http://127.0.0.1:{port}", 30.0, 0, CircuitBreaker(3, 1.0))
        (sent,) = remote.localize(long_video.query, "long", [long_video.video_id], 3, [Segment(start=300.0, end=332.0)])
        remote.close()
        assert [m.model_dump() for m in sent] == focused["moments"][0]  # the client sends the segment
        bad = httpx.post(batch, json=whole | {"video_ids": [{"id": long_video.video_id, "start": 3}]}, timeout=30)
        assert bad.status_code == 422 and "Extra inputs are not permitted" in bad.text
    finally:
        for p in (search, moments):
            p.terminate()
            p.wait(10)
