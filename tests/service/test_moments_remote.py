"""XMR_MOMENTS_URL: search gets hits' moments from a real ``xmr serve-moments`` process, stopped and started.

The search server serves a bundle without a moment head, so every moment it returns came over HTTP.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.remote_moments import CircuitBreaker, RemoteMoments
from tests.harness import free_port, start_server
from tests.service.test_moments_api import moments_root  # noqa: F401  (module fixture: bundle + stand-in head)

pytestmark = pytest.mark.e2e
QUERY = {"query": "a red 7 moves left", "k": 6, "modality": "video", "moments": 2}


def start_moments(root: Path, port: int) -> subprocess.Popen[bytes]:
    """``xmr serve-moments`` on ``port``; returns once its /readyz answers 200."""
    log = tempfile.NamedTemporaryFile("w+", prefix="xmr-moments-", suffix=".log", delete=False)  # noqa: SIM115
    xmr = Path(sys.executable).parent / "xmr"
    cmd = [str(xmr), "serve-moments", "--root", str(root), "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        assert proc.poll() is None, Path(log.name).read_text()
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("xmr serve-moments did not become ready in 60 s")


@pytest.fixture(scope="module")
def servers(moments_root: Path, bundle_root: Path) -> Iterator[tuple[str, int, list[subprocess.Popen[bytes]]]]:  # noqa: F811
    port = free_port()
    procs = [start_moments(moments_root, port)]
    env = {"XMR_MOMENTS_URL": f"http://127.0.0.1:{port}", "XMR_MOMENTS_BREAKER_S": "1.5"}
    search, url = start_server(bundle_root, XMR_MOMENTS_TIMEOUT_S="2", **env)
    try:
        yield url, port, procs
    finally:
        for p in [search, *procs]:
            p.terminate()
            p.wait(10)


def test_search_moments_come_from_the_moment_service_which_is_stopped_and_started(
    servers: tuple[str, int, list[subprocess.Popen[bytes]]],
    moments_root: Path,  # noqa: F811
) -> None:
    url, port, procs = servers
    moments_url = f"http://127.0.0.1:{port}"
    body = httpx.post(f"{url}/v1/search", json=QUERY, timeout=30).json()
    assert body["moments_error"] is None
    for hit in body["hits"]:
        direct = httpx.post(f"{moments_url}/v1/moments", json={"query": QUERY["query"], "video_id": hit["id"], "k": 2})
        assert 1 <= len(hit["moments"]) <= 2 and hit["moments"] == direct.json()["moments"]
    assert httpx.post(f"{moments_url}/v1/search", json=QUERY).status_code == 404  # a moments-only process

    procs[0].terminate()
    procs[0].wait(10)
    for _ in range(3):  # three failed calls in a row open the circuit
        down = httpx.post(f"{url}/v1/search", json=QUERY, timeout=30)
        assert down.status_code == 200 and len(down.json()["hits"]) == 6
        assert all(h["moments"] is None for h in down.json()["hits"])
        assert f"moment service {moments_url} is unavailable (ConnectError" in down.json()["moments_error"]
    t0 = time.monotonic()
    fast = httpx.post(f"{url}/v1/search", json=QUERY, timeout=30).json()
    assert "circuit open after 3 failed calls" in fast["moments_error"] and time.monotonic() - t0 < 5

    procs[0] = start_moments(moments_root, port)
    time.sleep(1.6)  # the circuit's open time; the next call is the half-open trial
    back = httpx.post(f"{url}/v1/search", json=QUERY, timeout=30).json()
    assert back["moments_error"] is None and back["hits"] == body["hits"]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"query": "a red 7", "video_ids": []}, 422, "video_ids: List should have at least 1 item"),
        ({"query": "a red 7", "video_ids": ["vid00000"], "k": 21}, 422, "k: Input should be less than or equal to 20"),
        ({"query": "a red 7", "video_ids": ["vid00000", "nope"]}, 404, "item 'nope' not found"),
        ({"query": "a red 7", "video_ids": ["img00001"]}, 422, "is an image"),
        ({"query": " ", "video_ids": ["vid00000"]}, 422, "query is blank"),
        ({"query": "a red 7", "video_ids": ["vid00000"] * 51}, 422, "video_ids: List should have at most 50 items"),
        ({"query": "a red 7", "video_ids": [""]}, 422, "video_ids.0.id: String should have at least 1 character"),
    ],
)
def test_bad_batch_requests(
    servers: tuple[str, int, list[subprocess.Popen[bytes]]], body: dict[str, object], status: int, fragment: str
) -> None:
    _, port, _ = servers
    r = httpx.post(f"http://127.0.0.1:{port}/v1/moments/batch", json=body, timeout=30)
    assert r.status_code == status and r.headers["content-type"] == "application/problem+json"
    assert fragment in r.json()["detail"]


def test_circuit_breaker_opens_after_failures_and_half_opens() -> None:
    now = [100.0]
    b = CircuitBreaker(failures=2, open_s=5.0, clock=lambda: now[0])
    b.failure()
    assert b.wait_left() == 0  # one failure: still closed
    b.failure()
    assert b.wait_left() == 5.0
    now[0] += 5.0
    assert b.wait_left() == 0  # half-open: one trial goes through
    b.failure()
    assert b.wait_left() == 5.0  # the trial failed: open again
    now[0] += 5.0
    b.success()
    b.failure()
    assert b.wait_left() == 0  # closed, counting from zero again


def test_many_videos_go_to_the_moment_service_in_batches_within_its_limit() -> None:
    """120 video hits: three batch calls of at most 50 ids (the endpoint's schema limit), answers in order."""
    sizes: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        import json

        ids = json.loads(request.content)["video_ids"]
        sizes.append(len(ids))
        moments = [[{"start": float(i[1:]), "end": float(i[1:]) + 1, "score": 1.0}] for i in ids]
        return httpx.Response(200, json={"collection": "c", "version": "v", "moments": moments})

    remote = RemoteMoments("http://moments", 1.0, 0, CircuitBreaker(failures=2, open_s=5.0))
    remote.http = httpx.Client(base_url="http://moments", transport=httpx.MockTransport(handler))
    found = remote.localize("q", "c", [f"v{i}" for i in range(120)], k=1)
    assert sizes == [50, 50, 20]
    assert [m[0].start for m in found] == [float(i) for i in range(120)]
