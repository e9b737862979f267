"""End to end: tiny corpus -> trained model -> ONNX -> bundle -> real uvicorn on 127.0.0.1 -> HTTP search."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

import bundle
from tests.harness import copy_with_new_version, start_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(bundle_root: Path) -> Iterator[tuple[str, int]]:
    proc, url = start_server(bundle_root)
    try:
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_held_out_captions_find_their_video(server: tuple[str, int], corpus: Path) -> None:
    url, _ = server
    items = [json.loads(x) for x in (corpus / "manifest.jsonl").read_text().splitlines()]
    videos = [i for i in items if i["modality"] == "video"]
    held_out = [v for v in videos if v["split"] != "train"]
    ranks = []
    with httpx.Client(base_url=url, timeout=10) as http:
        for v in held_out:
            for cap in v["captions"]:
                r = http.post("/v1/search", json={"query": cap["caption"], "k": len(videos), "modality": "video"})
                assert r.status_code == 200
                ids = [h["id"] for h in r.json()["hits"]]
                assert len(ids) == len(videos)
                ranks.append(ids.index(v["id"]))
    ranks_a = np.array(ranks)
    chance_median = len(videos) / 2
    assert np.mean(ranks_a < chance_median) > 0.6, ranks  # "above chance for most test captions"
    assert np.mean(ranks_a < 10) > 3 * 10 / len(videos), ranks  # R@10 well above chance (10/N)


def test_server_rejects_bad_input_cleanly(server: tuple[str, int]) -> None:
    url, _ = server
    r = httpx.post(f"{url}/v1/search", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    r = httpx.post(f"{url}/v1/search", json={"query": "x" * 10_000, "k": 10_000})
    assert r.status_code == 422 and "query" in r.json()["detail"] and "k" in r.json()["detail"]


def post_chunked(url: str, kilobytes: int) -> tuple[int, str]:
    """POST a search whose query is ``kilobytes`` KB of text, sent chunked (no content-length)."""
    host, port = url.removeprefix("http://").split(":")
    body = iter([b'{"query": "', *(b"a" * 1000 for _ in range(kilobytes)), b'"}'])
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        headers = {"content-type": "application/json", "transfer-encoding": "chunked"}
        conn.request("POST", "/v1/search", body=body, encode_chunked=True, headers=headers)
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


def test_chunked_body_over_the_limit_is_refused(server: tuple[str, int]) -> None:
    """No content-length to check up front: the limit is enforced while the body streams in."""
    url, _ = server
    status, text = post_chunked(url, 100)
    assert status == 413 and "request body over 65536 bytes" in text
    assert post_chunked(url, 1)[0] == 200


def test_server_process_has_no_torch_loaded(server: tuple[str, int]) -> None:
    """The live uvicorn process (not a stand-in) has no libtorch mapped."""
    _, pid = server
    maps = Path(f"/proc/{pid}/maps").read_text()
    assert "onnxruntime" in maps  # the check would see a library if one were loaded
    assert "libtorch" not in maps


def test_hot_swap_under_load_drops_no_request(bundle_root: Path, tmp_path: Path) -> None:
    """Clients keep searching while CURRENT flips: every request succeeds, and once a client has
    seen the new version it never gets the old one again."""
    root = tmp_path / "root"
    old, new = copy_with_new_version(bundle_root, root)
    bundle.set_current(root, "demo", old)
    proc, url = start_server(root, XMR_POLL_SECONDS="0.2")
    stop = threading.Event()
    seen: list[list[tuple[int, str]]] = [[] for _ in range(4)]

    def client(log: list[tuple[int, str]]) -> None:
        with httpx.Client(base_url=url, timeout=10) as http:
            while not stop.is_set():
                r = http.post("/v1/search", json={"query": "a red 7 moves left", "k": 5})
                log.append((r.status_code, r.json().get("version", "")))

    threads = [threading.Thread(target=client, args=(log,)) for log in seen]
    try:
        for t in threads:
            t.start()
        time.sleep(1.0)
        bundle.set_current(root, "demo", new)
        deadline = time.monotonic() + 15
        while not all(any(v == new for _, v in log) for log in seen) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
        proc.terminate()
        proc.wait(timeout=10)
    for log in seen:
        assert log and all(status == 200 for status, _ in log)
        versions = [v for _, v in log]
        assert versions[0] == old and versions[-1] == new
        first_new = versions.index(new)
        assert set(versions[first_new:]) == {new}
