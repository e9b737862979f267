"""Videos of any length: a 10-minute and a 2-hour video index with bounded memory, and an event that
happens only late in the 2-hour video finds it, with a segment that contains the event.

The videos are rendered in the test (32x32 frames at 1 fps, demo-corpus events at known times) and
indexed by real ``xmr`` builds in subprocesses, whose own peak RSS is compared.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

import bundle
from models.long_video import segment_bounds
from service.config import Settings
from service.main import create_app
from tests.harness import start_server, stop
from tests.indexer.long_media import actor, write_long_video

pytestmark = pytest.mark.slow
TEN_MIN, TWO_H = "ten minutes.mp4", "two hours.mp4"
LATE_EVENT = ("a red 7 moves left", 6616.0, 4.0)  # only in the 2-hour video, 1 h 50 min in
PEAK_MARGIN_MB = 40  # the 2-h build may hold its clip features (14,400 x 64 float32 = 3.7 MB) a few times over

BUILD = """
import json, resource, sys
from pathlib import Path
from indexer.build import build
r = build(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "counts": r.counts}))
"""


def build_in_subprocess(folder: Path, collection: str, root: Path, run: Path) -> dict[str, Any]:
    """``build`` in a fresh interpreter; returns its counts and its own peak RSS (MB)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-c", BUILD, str(folder), collection, str(root), str(run)]
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="session")
def long_builds(corpus: Path, trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Folder "ten" holds the 10-minute video; folder "two" the same plus the 2-hour video and ten short
    demo videos without the late event (distractors). Both are built; the result holds their peaks."""
    base = tmp_path_factory.mktemp("long")
    ten, two = base / "ten", base / "two" / "shorts"
    ten.mkdir()
    two.mkdir(parents=True)
    write_long_video(ten / TEN_MIN, 600, [actor("a yellow 5 moves down", 200), actor("a blue 3 moves right", 408)])
    shutil.copy(ten / TEN_MIN, two.parent / TEN_MIN)
    early = [actor("a green 2 moves up", 600), actor("a blue 3 moves right", 3000)]
    write_long_video(two.parent / TWO_H, 7200, [*early, actor(LATE_EVENT[0], LATE_EVENT[1], LATE_EVENT[2])])
    lines = [json.loads(x) for x in (corpus / "manifest.jsonl").read_text().splitlines()]
    shorts = [r for r in lines if r["modality"] == "video" and "red" not in r["title"] and " 7" not in r["title"]]
    for r in shorts[:10]:
        shutil.copy(corpus / r["uri"], two / Path(r["uri"]).name)
    root = base / "root"
    return {
        "root": root,
        "ten": build_in_subprocess(ten, "ten", root, trained_run),
        "two": build_in_subprocess(two.parent, "two", root, trained_run),
    }


def test_peak_memory_does_not_grow_with_video_length(long_builds: dict[str, Any]) -> None:
    ten, two = long_builds["ten"], long_builds["two"]
    assert ten["counts"] == {"video": 1, "image": 0} and two["counts"] == {"video": 12, "image": 0}
    assert two["peak_mb"] < ten["peak_mb"] + PEAK_MARGIN_MB, (ten, two)


def test_long_video_is_stored_as_overlapping_segments(long_builds: dict[str, Any]) -> None:
    root: Path = long_builds["root"]
    path = root / "two" / str(bundle.read_current(root, "two"))
    with sqlite3.connect(path / bundle.ITEMS) as db:
        row, duration = db.execute("SELECT row, duration FROM items WHERE id = ?", (TWO_H,)).fetchone()
        segs = db.execute("SELECT start_s, end_s FROM segments WHERE item = ? ORDER BY row", (row,)).fetchall()
        per_item = dict(db.execute("SELECT item, COUNT(*) FROM segments GROUP BY item").fetchall())
    assert duration == 7200.0
    want = np.array(segment_bounds(14400, 64)) / 2.0  # 2 clips/s; windows of 64 clips, half overlapping
    np.testing.assert_allclose(np.array(segs), want)
    assert sorted(per_item.values()) == [1] * 10 + [len(segment_bounds(1200, 64)), len(want)]
    offsets = np.load(path / bundle.CLIPS_OFFSETS)
    assert offsets[row + 1] - offsets[row] == 14400  # every clip of the 2 hours has its feature


def test_late_event_ranks_the_long_video_first_with_a_segment_containing_it(long_builds: dict[str, Any]) -> None:
    query, start, seconds = LATE_EVENT
    with TestClient(create_app(Settings(root=long_builds["root"], default_collection="two", poll_seconds=0))) as c:
        hits = c.post("/v1/search", json={"query": query, "k": 12}).json()["hits"]
    assert [h["id"] for h in hits][0] == TWO_H
    assert len({h["id"] for h in hits}) == len(hits) == 12  # every video once, though it has many segments
    segment = hits[0]["segment"]
    assert segment["start"] <= start and start + seconds <= segment["end"], segment
    by_id = {h["id"]: h for h in hits}
    assert by_id[TEN_MIN]["segment"] is not None and all(h["segment"] is None for h in hits if "shorts/" in h["id"])


@pytest.mark.e2e
def test_search_page_starts_the_player_at_the_matched_segment(long_builds: dict[str, Any]) -> None:
    """A real browser on a real server: the long video's card plays from its segment's start."""
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium on this machine")
    proc, url = start_server(long_builds["root"], XMR_DEFAULT_COLLECTION="two")
    try:
        top = httpx.post(f"{url}/v1/search", json={"query": LATE_EVENT[0], "k": 12}).json()["hits"][0]
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(url)
            page.fill("#q", LATE_EVENT[0])
            page.click("button")
            page.wait_for_function("(v => v && v.readyState >= 1)(document.querySelector('.hit video'))")
            at = page.evaluate("document.querySelector('.hit video').currentTime")
            meta = page.text_content(".hit .meta")
            browser.close()
    finally:
        stop(proc)
    assert top["id"] == TWO_H and at == pytest.approx(top["segment"]["start"]), (at, top)
    start = int(top["segment"]["start"])
    assert f"best match {start // 3600}:{start // 60 % 60:02d}:{start % 60:02d}" in str(meta), meta


def test_a_long_video_failing_mid_stream_is_skipped_with_its_reason(trained_run: Path) -> None:
    """Decoding errors surface from the prefetch thread in the encoder's loop; the item is reported."""
    from indexer.embed import Decoded, Embedder, LongVideo
    from indexer.manifest import InputItem
    from xmr.errors import MediaError

    emb = Embedder(trained_run)
    chunk = np.zeros((emb.span, emb.frame_size, emb.frame_size, 3), np.uint8)

    def broken():  # type: ignore[no-untyped-def]
        yield chunk
        raise MediaError("x.mp4: cannot decode video (truncated)")

    item = InputItem("x.mp4", "video", "x.mp4", Path("x.mp4"))
    out = emb.encode(Decoded(items=[item], frames=[LongVideo([chunk, chunk], broken(), None)], durations=[0.0]))
    assert out.items == [] and out.failed == [(item, "x.mp4: cannot decode video (truncated)")]
