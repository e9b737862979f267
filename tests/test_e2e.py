"""End to end: tiny corpus -> trained model -> ONNX -> bundle -> real uvicorn on 127.0.0.1 -> HTTP search."""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import bundle
from tests.harness import publish_copy, start_server

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


class Clients:
    """``n`` client threads, each calling ``request(http, log)`` in a loop until the block ends.

    An exception in any thread (a dropped connection, a failed assertion) is collected and
    re-raised on leaving the block, so it fails the test instead of silently ending that thread.
    """

    def __init__(self, url: str, n: int, request: Callable[[httpx.Client, list[Any]], None]) -> None:
        self.url, self.request = url, request
        self.logs: list[list[Any]] = [[] for _ in range(n)]
        self.errors: list[BaseException] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._loop, args=(log,), daemon=True) for log in self.logs]

    def _loop(self, log: list[Any]) -> None:
        try:
            with httpx.Client(base_url=self.url, timeout=30) as http:
                while not self.stop.is_set():
                    self.request(http, log)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            self.errors.append(exc)
            self.stop.set()

    def wait_each(self, seen: Callable[[Any], bool], what: str, seconds: float = 60) -> None:
        """Wait until every client has logged, after this call, an entry for which ``seen`` holds."""
        start = [len(log) for log in self.logs]
        deadline = time.monotonic() + seconds
        while not all(any(map(seen, log[n:])) for log, n in zip(self.logs, start, strict=True)):
            if self.stop.is_set():
                return  # a client failed: __exit__ raises its exception
            assert time.monotonic() < deadline, f"timed out waiting until every client {what}"
            time.sleep(0.05)

    def __enter__(self) -> Clients:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)
        if self.errors:
            raise self.errors[0]


@contextlib.contextmanager
def serving(root: Path, **env: str) -> Iterator[str]:
    proc, url = start_server(root, **env)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def perturbed_run(src: Path, dst: Path) -> Path:
    """A copy of trained run ``src`` whose weights are moved by seeded noise: another text and video encoder."""
    import torch

    shutil.copytree(src, dst)
    ckpt = torch.load(dst / "last.pt", weights_only=False)
    gen = torch.Generator().manual_seed(7)
    for t in ckpt["model"].values():
        if t.is_floating_point() and t.numel() > 1:
            t.add_(torch.randn(t.shape, generator=gen) * 0.3 * t.std())
    torch.save(ckpt, dst / "last.pt")
    return dst


class Oracle:
    """Exact expected search results of one published version, computed without the service's code:
    its ONNX encoder in a fresh ORT session, numpy brute force over its stored vectors, its items table."""

    def __init__(self, path: Path) -> None:
        import faiss
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.session = ort.InferenceSession(str(path / bundle.TEXT_ENCODER), providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(path / bundle.TOKENIZER))
        index = faiss.read_index(str(path / bundle.INDEX))
        self.vectors = index.reconstruct_n(0, index.ntotal)  # (N_segments, E), FAISS id i = segments row i
        with sqlite3.connect(path / bundle.ITEMS) as db:
            self.ids = [i for (i,) in db.execute("SELECT id FROM items ORDER BY row")]
            self.item_of = np.array([r for (r,) in db.execute("SELECT item FROM segments ORDER BY row")])

    def scores(self, query: str) -> dict[str, float]:
        """Every item's score for ``query`` (the server strips the query first)."""
        enc = self.tokenizer.encode(query.strip())
        feed = {"input_ids": np.array([enc.ids]), "attention_mask": np.array([enc.attention_mask])}
        q = self.session.run([bundle.TEXT_ENCODER_OUTPUT], feed)[0][0]  # (E,)
        best = np.full(len(self.ids), -np.inf)
        np.maximum.at(best, self.item_of, self.vectors @ q)  # an item scores as its best segment
        return dict(zip(self.ids, best.tolist(), strict=True))

    @staticmethod
    def check(expected: dict[str, float], hits: list[dict[str, Any]], k: int) -> None:
        """Hits are this version's items with this version's scores, and its top ``k`` (ties in any order)."""
        got = {h["id"]: h["score"] for h in hits}
        assert len(got) == len(hits) == min(k, len(expected))
        assert set(got) <= set(expected), sorted(set(got) - set(expected))
        np.testing.assert_allclose([got[i] for i in got], [expected[i] for i in got], atol=1e-4)
        top = sorted(expected.values(), reverse=True)[:k]
        np.testing.assert_allclose([h["score"] for h in hits], top, atol=1e-4)


def test_hot_swap_between_different_bundles_under_load(
    bundle_root: Path, corpus: Path, trained_run: Path, tmp_path: Path
) -> None:
    """CURRENT flips back and forth between two bundles that differ in encoder weights, vectors and
    items while clients search: every response is 200 and exactly what the version it names answers
    (so an encoder, index or items table mixed up across versions inside one request is caught),
    and no client sees the version change more often than CURRENT did."""
    from indexer.build import build

    root = tmp_path / "root"
    shutil.copytree(bundle_root, root)
    a = bundle.read_current(root, "demo")
    recs = [json.loads(x) for x in (corpus / "manifest.jsonl").read_text().splitlines()][::3]
    (tmp_path / "b.jsonl").write_text(
        "".join(json.dumps({**r, "id": f"b-{r['id']}", "uri": str(corpus / r["uri"])}) + "\n" for r in recs)
    )
    b = build(tmp_path / "b.jsonl", "demo", root, perturbed_run(trained_run, tmp_path / "run_b"), batch_size=16).version
    assert a and a != b
    oracles = {v: Oracle(root / "demo" / v) for v in (a, b)}
    queries = [r["title"] for r in recs[:6]]
    expected = {v: {q: o.scores(q) for q in queries} for v, o in oracles.items()}
    for q in queries:  # the two versions answer every query differently
        assert max(expected[a][q].values()) != pytest.approx(max(expected[b][q].values()), abs=1e-3)

    def search(http: httpx.Client, log: list[Any]) -> None:
        q = queries[len(log) % len(queries)]
        r = http.post("/v1/search", json={"query": q, "k": 10})
        assert r.status_code == 200, r.text
        log.append((q, r.json()))

    flips = 6
    bundle.set_current(root, "demo", a)
    with serving(root, XMR_POLL_SECONDS="0.1") as url, Clients(url, 4, search) as clients:
        for i in range(flips):
            version = (b, a)[i % 2]
            bundle.set_current(root, "demo", version)
            clients.wait_each(lambda entry, v=version: entry[1]["version"] == v, f"gets {version}")
    for log in clients.logs:
        versions = [r["version"] for _, r in log]
        assert set(versions) == {a, b}
        assert sum(x != y for x, y in itertools.pairwise(versions)) <= flips
        for q, r in log:
            Oracle.check(expected[r["version"]][q], r["hits"], 10)


def test_collection_appearing_under_load(bundle_root: Path, tmp_path: Path) -> None:
    """New collections are published while clients search the existing one and list collections: no
    request fails, the listing is always consistent, and each new collection becomes searchable."""
    root = tmp_path / "root"
    shutil.copytree(bundle_root, root)
    demo = root / "demo" / str(bundle.read_current(root, "demo"))

    def use(http: httpx.Client, log: list[Any]) -> None:
        r = http.post("/v1/search", json={"query": "a red 3 moves up", "k": 3, "collection": "demo"})
        assert r.status_code == 200 and r.json()["collection"] == "demo", r.text
        listed = http.get("/v1/collections")
        assert listed.status_code == 200 and all(c["error"] is None for c in listed.json()), listed.text
        ready = http.get("/readyz")
        assert ready.status_code == 200 and set(ready.json()["collections"]) >= {"demo"}, ready.text
        missing = http.get("/v1/items/no-such-item")  # walks every live collection
        assert missing.status_code == 404, missing.text
        log.append([c["name"] for c in listed.json()])

    with serving(root, XMR_POLL_SECONDS="0.1") as url, Clients(url, 4, use) as clients:
        for i in range(3):
            name = f"extra{i}"
            publish_copy(demo, root, name)
            clients.wait_each(lambda names, n=name: n in names, f"lists {name}")
            r = httpx.post(f"{url}/v1/search", json={"query": "a red 3 moves up", "k": 3, "collection": name})
            assert r.status_code == 200 and r.json()["collection"] == name, r.text
    for log in clients.logs:
        assert all(names == sorted(names) and "demo" in names for names in log)
        assert log[-1] == ["demo", "extra0", "extra1", "extra2"]
