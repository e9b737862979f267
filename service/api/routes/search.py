"""POST /v1/search: encode the query (ONNX Runtime, micro-batched), search FAISS, join item metadata."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from bundle import Item
from service.metrics import Metrics
from service.schemas import Problem, SearchRequest, SearchResponse
from service.store import LoadedBundle

router = APIRouter(tags=["search"])
ERRORS = {s: {"model": Problem, "content": {"application/problem+json": {}}} for s in (400, 404, 422, 503)}


class JSONBytes(JSONResponse):  # a JSONResponse, so the OpenAPI schema shows the model
    """A body serialised once, by orjson, from plain dicts; the route's ``response_model`` documents it.

    FastAPI would otherwise validate the returned model again and encode it (about a tenth of a
    millisecond per search, benchmarks/profile_request.py). tests/service/test_speed_paths.py
    checks every answer against the response model instead.
    """

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else orjson.dumps(content)


def hit(item: Item, score: float) -> dict[str, Any]:
    """One hit as the ``Hit`` schema spells it."""
    return {
        "id": item.id,
        "score": score,
        "modality": item.modality,
        "uri": item.uri,
        "title": item.title,
        "duration": item.duration,
    }


def encode_and_rank(live: LoadedBundle, req: SearchRequest, metrics: Metrics, t0: float) -> dict[str, Any]:
    with metrics.stage("encode"):
        vec = live.encoder.encode([req.query])
    return rank(live, req, vec, metrics, t0)


def rank(live: LoadedBundle, req: SearchRequest, vec: np.ndarray, metrics: Metrics, t0: float) -> dict[str, Any]:
    """Search ``vec`` (1, E) in the bundle; the response as a ``SearchResponse`` dict. ``t0``: request start."""
    with metrics.stage("search"):
        ranked = live.searcher.search(vec, req.k, req.modality)[0]
    with metrics.stage("join"):
        items = live.searcher.items([row for row, _ in ranked])
    hits = [hit(it, score) for row, score in ranked if (it := items.get(row)) is not None]
    return {
        "query": req.query,
        "collection": live.collection,
        "version": live.version,
        "model_id": live.model_id,
        "took_ms": round((time.perf_counter() - t0) * 1000, 3),
        "hits": hits,
    }


def runs_inline(work_ms: float, budget_ms: float, own_core: bool) -> bool:
    """Whether a request whose measured work is ``work_ms`` runs on the event loop instead of a thread.

    Only cheap work (``budget_ms``, XMR_INLINE_MAX_MS): the hop to a thread costs more than it, but
    slow work would block the loop. And only where a thread could not add parallelism: this process
    has a core of its own (``xmr serve --workers`` = cores, the default). One worker on several cores
    keeps the thread pool: same-run A/B, 1 worker, 8 connections, inline gave 0.62x the searches/s
    (a request that never yields runs alone, so the process used one core).
    """
    return work_ms <= budget_ms and own_core


@router.post(
    "/v1/search",
    response_model=SearchResponse,
    response_class=JSONBytes,
    responses=ERRORS,  # type: ignore[arg-type]
)
async def search(req: SearchRequest, request: Request) -> JSONBytes:
    """Rank the collection's videos and/or images by how well they show ``query``."""
    t0 = time.perf_counter()
    state = request.app.state  # read directly: each FastAPI dependency costs a resolution per request
    live, metrics, settings = state.store.get(req.collection), state.metrics, state.settings
    encode_ms, search_ms = live.encoder.latency_ms, live.searcher.latency_ms
    if encode_ms < settings.batch_min_encode_ms:
        if runs_inline(encode_ms + search_ms, settings.inline_max_ms, state.own_core):
            return JSONBytes(encode_and_rank(live, req, metrics, t0))
        return JSONBytes(await run_in_threadpool(encode_and_rank, live, req, metrics, t0))
    # Encoders slow enough to gain from sharing a forward pass go through the micro-batcher; the
    # "encode" stage includes the wait for batch company.
    if runs_inline(search_ms, settings.inline_max_ms, state.own_core):
        with metrics.stage("encode"):
            vec = await state.batcher.encode(live.encoder, req.query)
        return JSONBytes(rank(live, req, vec[None], metrics, t0))

    def ranked(vec: np.ndarray) -> dict[str, Any]:  # in the batch's thread, right after the forward pass
        metrics.observe_stage("encode", time.perf_counter() - t0)
        return rank(live, req, vec[None], metrics, t0)

    return JSONBytes(await state.batcher.encode_then(live.encoder, req.query, ranked))
