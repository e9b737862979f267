"""POST /v1/search: encode the query (ONNX Runtime, micro-batched), search FAISS, join item metadata."""

from __future__ import annotations

import time

import numpy as np
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from service.api.routes.moments import add_moments
from service.deps import BatcherDep, MetricsDep, RemoteMomentsDep, SettingsDep, StoreDep
from service.metrics import Metrics
from service.remote_moments import RemoteMoments
from service.schemas import Hit, Problem, SearchRequest, SearchResponse, Segment
from service.store import LoadedBundle

router = APIRouter(tags=["search"])
ERRORS = {s: {"model": Problem, "content": {"application/problem+json": {}}} for s in (400, 404, 422, 503)}


def encode_and_rank(
    live: LoadedBundle, req: SearchRequest, metrics: Metrics, t0: float, remote: RemoteMoments | None = None
) -> SearchResponse:
    with metrics.stage("encode"):
        vec = live.encoder.encode([req.query])
    return rank(live, req, vec, metrics, t0, remote)


def rank(
    live: LoadedBundle,
    req: SearchRequest,
    vec: np.ndarray,
    metrics: Metrics,
    t0: float,
    remote: RemoteMoments | None = None,
) -> SearchResponse:
    """Search ``vec`` (1, E) in the bundle and build the response; ``t0`` is when the request began.

    With ``req.moments``, video hits get moments from the bundle's head, or from ``remote`` when set."""
    with metrics.stage("search"):
        ranked = live.searcher.search_segments(vec, req.k, req.modality)[0]
    with metrics.stage("join"):
        items = live.searcher.items([r.row for r in ranked])
    hits = [
        Hit(
            id=it.id,
            score=r.score,
            modality=it.modality,  # type: ignore[arg-type]  # items.sqlite holds only video|image
            uri=it.uri,
            title=it.title,
            duration=it.duration,
            segment=Segment(start=seg[0], end=seg[1]) if (seg := live.searcher.segment(r.segment)) else None,
        )
        for r in ranked
        if (it := items.get(r.row)) is not None
    ]
    moments_error = None
    if req.moments_per_hit:  # one batched moment-head call for all video hits
        with metrics.stage("moments"):
            rows = [r.row for r in ranked if r.row in items]  # aligned with hits
            moments_error = add_moments(live, req.query, req.moments_per_hit, hits, rows, remote)
    took = (time.perf_counter() - t0) * 1000
    return SearchResponse(
        query=req.query,
        collection=live.collection,
        version=live.version,
        model_id=live.model_id,
        took_ms=round(took, 3),
        hits=hits,
        moments_error=moments_error,
    )


@router.post("/v1/search", response_model=SearchResponse, responses=ERRORS)  # type: ignore[arg-type]
async def search(
    req: SearchRequest,
    store: StoreDep,
    metrics: MetricsDep,
    batcher: BatcherDep,
    settings: SettingsDep,
    remote: RemoteMomentsDep,
) -> SearchResponse:
    """Rank the collection's videos and/or images by how well they show ``query``."""
    t0 = time.perf_counter()
    live = store.get(req.collection)
    # CPU work runs in the thread pool so a large index never blocks the event loop (running small
    # searches inline measured no faster). Only encoders slow enough to gain from sharing a forward
    # pass go through the micro-batcher (docs/benchmarks.md).
    if live.encoder.latency_ms < settings.batch_min_encode_ms:
        return await run_in_threadpool(encode_and_rank, live, req, metrics, t0, remote)
    with metrics.stage("encode"):  # includes the wait for batch company (at most XMR_BATCH_WAIT_MS)
        vec = await batcher.encode(live.encoder, req.query)
    return await run_in_threadpool(rank, live, req, vec[None], metrics, t0, remote)
