"""End to end: tiny corpus -> trained model -> ONNX -> bundle -> real uvicorn on 127.0.0.1 -> HTTP search."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(bundle_root: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    xmr = Path(sys.executable).parent / "xmr"
    proc = subprocess.Popen(
        [str(xmr), "serve", "--root", str(bundle_root), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "XMR_POLL_SECONDS": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else "server died"
            time.sleep(0.2)
        else:
            pytest.fail("server did not become ready in 60 s")
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


def test_server_process_has_no_torch_loaded(server: tuple[str, int]) -> None:
    """The live uvicorn process (not a stand-in) has no libtorch mapped."""
    _, pid = server
    maps = Path(f"/proc/{pid}/maps").read_text()
    assert "onnxruntime" in maps  # the check would see a library if one were loaded
    assert "libtorch" not in maps
