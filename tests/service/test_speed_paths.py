"""The fast paths of the web layer checked against their exact oracles: memory-mapped FAISS codes vs a
normal read, the inline search vs the thread-pool one, one serialisation vs the response model."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest
from fastapi.testclient import TestClient

import service.api.routes.search as search_route
from service.config import Settings
from service.main import create_app
from service.schemas import SearchResponse
from service.searcher import READ_FLAGS

QUERIES = [
    {"query": "a red 7 moves left, then a blue 3 appears", "k": 20},
    {"query": "a blue 3", "k": 5, "modality": "image"},
    {"query": "  a green 1 moves up  ", "k": 1000, "modality": "video"},
]


@pytest.mark.parametrize("factory", ["Flat", "IVF8,Flat", "HNSW8"])
def test_mmapped_index_answers_exactly_like_a_normal_read(tmp_path: Path, factory: str) -> None:
    rng = np.random.default_rng(7)
    base = rng.standard_normal((2000, 32)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    index = faiss.index_factory(32, factory, faiss.METRIC_INNER_PRODUCT)
    index.train(base)
    index.add(base)
    path = tmp_path / "index.faiss"
    faiss.write_index(index, str(path))
    queries = rng.standard_normal((50, 32)).astype(np.float32)
    want_scores, want_ids = faiss.read_index(str(path)).search(queries, 10)
    mapped = faiss.read_index(str(path), READ_FLAGS)
    got_scores, got_ids = mapped.search(queries, 10)
    np.testing.assert_array_equal(got_ids, want_ids)
    np.testing.assert_array_equal(got_scores, want_scores)
    if factory == "Flat":  # the codes really are mapped from the file, not copied to the heap
        assert str(path) in Path("/proc/self/maps").read_text()


def searches(client: TestClient) -> list[bytes]:
    out = []
    for body in QUERIES:
        r = client.post("/v1/search", json=body)
        assert r.status_code == 200 and r.headers["content-type"] == "application/json", r.text
        out.append(r.content)
    return out


@pytest.fixture(scope="module")
def inline_and_threaded(bundle_root: Path) -> Iterator[tuple[TestClient, TestClient]]:
    own_core = os.cpu_count() or 1  # as many workers as cores: each has a core of its own, so it may run inline
    inline = Settings(root=bundle_root, poll_seconds=0, inline_max_ms=1e9, batch_min_encode_ms=1e9, workers=own_core)
    threaded = Settings(root=bundle_root, poll_seconds=0, inline_max_ms=0, batch_min_encode_ms=1e9)
    with TestClient(create_app(inline)) as a, TestClient(create_app(threaded)) as b:
        yield a, b


def test_inline_and_thread_pool_paths_give_the_same_hits(
    inline_and_threaded: tuple[TestClient, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    inline, threaded = inline_and_threaded
    hops: list[Any] = []
    real = search_route.run_in_threadpool

    async def counted(fn: Any, *args: Any) -> Any:
        hops.append(fn)
        return await real(fn, *args)

    monkeypatch.setattr(search_route, "run_in_threadpool", counted)
    a = [SearchResponse.model_validate_json(x) for x in searches(inline)]
    assert hops == []  # under the budget: no thread hop
    b = [SearchResponse.model_validate_json(x) for x in searches(threaded)]
    assert hops == [search_route.encode_and_rank] * len(QUERIES)
    for x, y in zip(a, b, strict=True):
        assert [h.id for h in x.hits] == [h.id for h in y.hits] and len(x.hits) > 0
        assert [h.score for h in x.hits] == [h.score for h in y.hits]


def test_batched_path_can_also_rank_inline(bundle_root: Path, inline_and_threaded: tuple[TestClient, ...]) -> None:
    own_core = os.cpu_count() or 1
    settings = Settings(root=bundle_root, poll_seconds=0, inline_max_ms=1e9, batch_min_encode_ms=0, workers=own_core)
    with TestClient(create_app(settings)) as batched:
        got = [SearchResponse.model_validate_json(x) for x in searches(batched)]
        assert "xmr_encode_batch_size_count 3.0" in batched.get("/metrics").text
    want = [SearchResponse.model_validate_json(x) for x in searches(inline_and_threaded[1])]
    for x, y in zip(got, want, strict=True):
        assert [h.id for h in x.hits] == [h.id for h in y.hits]
        assert [h.score for h in x.hits] == pytest.approx([h.score for h in y.hits], abs=1e-5)


def test_body_is_what_the_response_model_would_send(inline_and_threaded: tuple[TestClient, ...]) -> None:
    """Oracle: the response model validates the body and serialises it back to the same JSON."""
    for raw in searches(inline_and_threaded[0]):
        model = SearchResponse.model_validate_json(raw, strict=True)
        assert model.model_dump(mode="json") == json.loads(raw)
        assert model.hits == sorted(model.hits, key=lambda h: -h.score)


def test_probes_measured_the_bundle_at_load(inline_and_threaded: tuple[TestClient, ...]) -> None:
    (live,) = inline_and_threaded[0].app.state.store.live.values()  # type: ignore[attr-defined]
    assert live.searcher.latency_ms > 0 and live.encoder.latency_ms > 0


@pytest.mark.parametrize(
    ("work_ms", "own_core", "inline"),
    [
        (0.4, True, True),  # a worker per core: a thread adds a hop, not parallelism
        (0.4, False, False),  # one worker on several cores: threads let searches use the other cores
        (5.0, True, False),  # slow work never blocks the event loop
    ],
)
def test_when_a_search_runs_inline(work_ms: float, own_core: bool, inline: bool) -> None:
    assert search_route.runs_inline(work_ms, 1.0, own_core) is inline


@pytest.mark.parametrize("otel", [False, True])
def test_fastapi_telemetry_is_checked_only_when_asked_for(
    bundle_root: Path, monkeypatch: pytest.MonkeyPatch, otel: bool
) -> None:
    """FastAPI's native OpenTelemetry looks up the global providers on every request unless it is off
    (XMR_OTEL, default off: ~14% of the event loop's time under load); on, it looks them up again."""
    from opentelemetry import trace

    calls: list[int] = []
    real = trace.get_tracer_provider
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: calls.append(1) or real())
    app = create_app(Settings(root=bundle_root, poll_seconds=0, otel=otel))
    with TestClient(app) as c:
        calls.clear()
        assert c.post("/v1/search", json={"query": "a red 7", "k": 3}).status_code == 200
    assert bool(calls) == otel
