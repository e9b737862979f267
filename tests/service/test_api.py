"""The app through its real ASGI stack (Starlette's TestClient runs the lifespan) on a real bundle."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import bundle
from service.config import Settings
from service.main import create_app
from tests.conftest import TINY_IMAGES, TINY_VIDEOS
from tests.harness import copy_with_new_version


def client_for(root: Path, poll_seconds: float = 0, batch_min_encode_ms: float = 1.0) -> TestClient:
    return TestClient(
        create_app(Settings(root=root, poll_seconds=poll_seconds, batch_min_encode_ms=batch_min_encode_ms))
    )


@pytest.fixture(scope="module")
def client(bundle_root: Path) -> Iterator[TestClient]:
    with client_for(bundle_root, batch_min_encode_ms=1e9) as c:  # direct path; the batched one is tested below
        yield c


def test_search_returns_ranked_hits(client: TestClient) -> None:
    r = client.post("/v1/search", json={"query": "a red 7 moves left", "k": 5, "modality": "video"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["collection"] == "demo" and body["model_id"].startswith("baseline_tiny-")
    hits = body["hits"]
    assert len(hits) == 5 and all(h["modality"] == "video" for h in hits)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert all(h["uri"].startswith("videos/") and h["duration"] > 0 for h in hits)


def test_modality_filter_and_k_larger_than_corpus(client: TestClient) -> None:
    imgs = client.post("/v1/search", json={"query": "a blue 3", "k": 50, "modality": "image"}).json()["hits"]
    assert len(imgs) == 10 and {h["modality"] for h in imgs} == {"image"}
    everything = client.post("/v1/search", json={"query": "a blue 3", "k": 1000}).json()["hits"]
    assert len(everything) == TINY_VIDEOS + TINY_IMAGES


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"query": ""}, 422, "query"),
        ({"query": "   "}, 422, "query is blank"),
        ({"query": "a" * 10_000}, 422, "at most 1000 characters"),
        ({"query": "a red 7", "k": 0}, 422, "k: Input should be greater than or equal to 1"),
        ({"query": "a red 7", "k": 10_000}, 422, "k: Input should be less than or equal to 1000"),
        ({"query": "a red 7", "modality": "audio"}, 422, "modality"),
        ({"query": "a red 7", "colour": "red"}, 422, "colour: Extra inputs are not permitted"),
        ({"k": 3}, 422, "query: Field required"),
        ({"query": "a red 7", "collection": "nope"}, 404, "collection 'nope' not found"),
    ],
)
def test_bad_requests_get_problem_json(client: TestClient, body: dict[str, object], status: int, fragment: str) -> None:
    r = client.post("/v1/search", json=body)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    assert fragment in r.json()["detail"]


def test_malformed_json_and_oversized_body(client: TestClient) -> None:
    r = client.post("/v1/search", content=b'{"query": "a red', headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["detail"] == "request body is not valid JSON"
    r = client.post("/v1/search", content=b"x" * 70_000, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "request body over" in r.json()["detail"]


def test_items_collections_health(client: TestClient) -> None:
    item = client.get("/v1/items/vid00000").json()
    assert item["modality"] == "video" and item["collection"] == "demo" and item["duration"] > 0
    missing = client.get("/v1/items/vid99999")
    assert missing.status_code == 404 and "vid99999" in missing.json()["detail"]
    (coll,) = client.get("/v1/collections").json()
    assert coll["counts"] == {"video": TINY_VIDEOS, "image": TINY_IMAGES}
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"


def test_openapi_shows_real_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    req = spec["components"]["schemas"]["SearchRequest"]
    assert req["examples"][0]["query"].startswith("a red 7")
    assert client.get("/docs").status_code == 200


def test_hot_reload_by_polling_current(bundle_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    old, new = copy_with_new_version(bundle_root, root)
    bundle.set_current(root, "demo", old)
    with client_for(root, poll_seconds=0.1) as c:
        assert c.get("/readyz").json()["collections"]["demo"] == old
        bundle.set_current(root, "demo", new)
        deadline = time.monotonic() + 10
        while c.get("/readyz").json()["collections"]["demo"] != new and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.post("/v1/search", json={"query": "a red 7"}).json()["version"] == new


def test_corrupt_new_version_is_refused_and_old_keeps_serving(bundle_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    old, new = copy_with_new_version(bundle_root, root)
    bundle.set_current(root, "demo", old)
    with client_for(root) as c:
        (root / "demo" / new / "index.faiss").write_bytes(b"corrupt")
        bundle.set_current(root, "demo", new)
        assert c.app.state.store.refresh() == []
        r = c.post("/v1/search", json={"query": "a red 7"})
        assert r.status_code == 200 and r.json()["version"] == old
        (coll,) = c.get("/v1/collections").json()
        assert "checksum mismatch for index.faiss" in coll["error"]


def test_corrupt_bundle_at_startup_is_not_ready(bundle_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(bundle_root, root)
    live = bundle.read_current(root, "demo")
    (root / "demo" / live / "tokenizer.json").write_text("{}")
    with client_for(root) as c:
        r = c.get("/readyz")
        assert r.status_code == 503 and "checksum mismatch for tokenizer.json" in r.json()["detail"]
        r = c.post("/v1/search", json={"query": "a red 7"})
        assert r.status_code == 503 and "no bundle loaded" in r.json()["detail"]


def test_empty_root_is_not_ready(tmp_path: Path) -> None:
    with client_for(tmp_path) as c:
        assert c.get("/readyz").status_code == 503
        assert c.get("/healthz").status_code == 200


def test_prometheus_metrics(client: TestClient) -> None:
    client.post("/v1/search", json={"query": "a red 7 moves left", "k": 3})
    client.post("/v1/search", json={"query": "", "k": 3})
    text = client.get("/metrics").text
    for stage in ("encode", "search", "join"):
        assert f'xmr_search_stage_seconds_count{{stage="{stage}"}}' in text
    assert 'xmr_http_request_seconds_count{method="POST",route="/v1/search",status="200"}' in text
    assert 'xmr_http_request_seconds_count{method="POST",route="/v1/search",status="422"}' in text
    assert f'xmr_bundle_items{{collection="demo",modality="video"}} {TINY_VIDEOS}.0' in text
    assert 'xmr_bundle_refused{collection="demo"} 0.0' in text
    assert "xmr_encode_batch_size_count 0.0" in text  # encoders under batch_min_encode_ms skip the batcher
    assert 'xmr_bundle_info{collection="demo",model_id="baseline_tiny-' in text


def test_batched_path_returns_the_same_hits(client: TestClient, bundle_root: Path) -> None:
    body = {"query": "a blue 3 appears, then a red 7 moves left", "k": 20}
    direct = client.post("/v1/search", json=body).json()["hits"]
    with client_for(bundle_root, batch_min_encode_ms=0) as batched:  # every encoder goes through the batcher
        hits = batched.post("/v1/search", json=body).json()["hits"]
        assert "xmr_encode_batch_size_count 1.0" in batched.get("/metrics").text
    assert [h["id"] for h in hits] == [h["id"] for h in direct]
    assert [h["score"] for h in hits] == pytest.approx([h["score"] for h in direct], abs=1e-5)
