"""POST /v1/search: encode the query (ONNX Runtime, micro-batched), search FAISS, join item metadata."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic_core import to_json
from starlette.concurrency import run_in_threadpool

from bundle import MOMENT_QUERY_SENTENCE
from service.api.routes.moments import add_moments
from service.metrics import Metrics
from service.remote_moments import RemoteMoments
from service.schemas import Hit, Problem, SearchRequest, SearchResponse, Segment, built
from service.store import LoadedBundle

router = APIRouter(tags=["search"])
ERRORS = {s: {"model": Problem, "content": {"application/problem+json": {}}} for s in (400, 404, 422, 503)}


class JSONBytes(JSONResponse):  # a JSONResponse, so the OpenAPI schema shows the route's response_model
    """The response model serialised once, by pydantic-core's Rust serializer.

    FastAPI would otherwise validate the returned model a second time before encoding it
    (benchmarks/profile_request.py). tests/service/test_speed_paths.py checks answers against the model.
    """

    def render(self, content: Any) -> bytes:
        if isinstance(content, BaseModel):
            return content.__pydantic_serializer__.to_json(content)
        return to_json(content)


def encode_and_rank(
    live: LoadedBundle, req: SearchRequest, metrics: Metrics, t0: float, remote: RemoteMoments | None = None
) -> SearchResponse:
    head, query_inputs = live.moments, None
    with metrics.stage("encode"):
        if head is not None and shares_query_graph(live, req, remote):
            query_inputs = head.encode_query(req.query)  # one text-tower pass for the search and the moments
            vec = query_inputs[MOMENT_QUERY_SENTENCE]
        else:
            vec = live.encoder.encode([req.query])
    return rank(live, req, vec, metrics, t0, remote, query_inputs)


def rank(
    live: LoadedBundle,
    req: SearchRequest,
    vec: np.ndarray,
    metrics: Metrics,
    t0: float,
    remote: RemoteMoments | None = None,
    query_inputs: dict[str, np.ndarray] | None = None,
) -> SearchResponse:
    """Search ``vec`` (1, E) in the bundle and build the response; ``t0`` is when the request began.

    With ``req.moments``, video hits get moments from the bundle's head (``query_inputs``: the head's
    query graph outputs when the caller ran it), or from ``remote`` when set."""
    depth = max(req.k, live.reranker.candidates) if live.reranker else req.k
    with metrics.stage("search"):
        ranked = live.searcher.search_segments(vec, depth, req.modality)[0]
    if live.reranker:  # token-level models (ProTA) re-score the top candidates (service/rerank.py)
        with metrics.stage("rerank"):
            ranked = live.reranker.rerank(req.query, ranked)[: req.k]
    with metrics.stage("join"):
        items = live.searcher.items([r.row for r in ranked])
    # Built without validation (``built``: model_construct without its walk over the fields): every field
    # comes from the bundle as the right type, and validating ten hits cost ~40 us a request;
    # tests/service/test_speed_paths.py validates the answers against the response model.
    segment_of = live.searcher.segment
    hits = [
        built(
            Hit,
            {
                "id": it.id,
                "score": float(r.score),
                "modality": it.modality,
                "uri": it.uri,
                "title": it.title,
                "duration": it.duration,
                "segment": built(Segment, {"start": seg[0], "end": seg[1]}) if (seg := segment_of(r.segment)) else None,
                "moments": None,
            },
        )
        for r in ranked
        if (it := items.get(r.row)) is not None
    ]
    moments_error = None
    if req.moments_per_hit:  # one batched moment-head call for all video hits
        with metrics.stage("moments"):
            rows = [r.row for r in ranked if r.row in items]  # aligned with hits
            moments_error = add_moments(live, req.query, req.moments_per_hit, hits, rows, remote, query_inputs)
    took = (time.perf_counter() - t0) * 1000
    return SearchResponse.model_construct(
        query=req.query,
        collection=live.collection,
        version=live.version,
        model_id=live.model_id,
        took_ms=round(took, 3),
        hits=hits,
        moments_error=moments_error,
    )


def shares_query_graph(live: LoadedBundle, req: SearchRequest, remote: RemoteMoments | None) -> bool:
    """Whether ``encode_and_rank`` takes the search vector from the moment head's query graph."""
    head = live.moments
    return bool(req.moments_per_hit) and remote is None and head is not None and head.shares_encoder


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
    return JSONBytes(await answer(request.app.state, req, time.perf_counter()))


async def answer(state: Any, req: SearchRequest, t0: float) -> SearchResponse:
    """The search's answer: ``state`` is the app's (``app.state``), ``t0`` when the request began. Shared by
    the route and by service/fastpath.py, which serves valid requests without FastAPI's request machinery."""
    live, metrics, settings = state.store.get(req.collection), state.metrics, state.settings
    remote: RemoteMoments | None = getattr(state, "remote_moments", None)
    encode_ms, search_ms = live.encoder.latency_ms, live.searcher.latency_ms
    if live.reranker:  # re-scoring the top candidates is part of the search's work
        search_ms += live.reranker.latency_ms
    # Moments mean a moment-head call or a request to the moment service: never on the event loop.
    own_core = state.own_core and not req.moments_per_hit
    # A search with moments whose head's query graph also gives the search vector runs that graph once
    # (encode_and_rank); through the batcher it would run the text tower twice (the batch's encoder, then
    # the query graph): measured on the MiniLM collection, +8.7 ms a request instead of +2.9 ms.
    if encode_ms < settings.batch_min_encode_ms or shares_query_graph(live, req, remote):
        if runs_inline(encode_ms + search_ms, settings.inline_max_ms, own_core):
            return encode_and_rank(live, req, metrics, t0, remote)
        return await run_in_threadpool(encode_and_rank, live, req, metrics, t0, remote)
    # Encoders slow enough to gain from sharing a forward pass go through the micro-batcher; the
    # "encode" stage includes the wait for batch company.
    if runs_inline(search_ms, settings.inline_max_ms, own_core):
        with metrics.stage("encode"):
            vec = await state.batcher.encode(live.encoder, req.query)
        return rank(live, req, vec[None], metrics, t0, remote)

    def ranked(vec: np.ndarray) -> SearchResponse:  # in the batch's thread, right after the forward pass
        metrics.observe_stage("encode", time.perf_counter() - t0)
        return rank(live, req, vec[None], metrics, t0, remote)

    response: SearchResponse = await state.batcher.encode_then(live.encoder, req.query, ranked)
    return response
