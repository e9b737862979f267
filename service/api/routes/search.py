"""POST /v1/search: encode the query (ONNX Runtime), search FAISS, join item metadata."""

from __future__ import annotations

import time

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from service.deps import MetricsDep, StoreDep
from service.metrics import Metrics
from service.schemas import Hit, Problem, SearchRequest, SearchResponse
from service.store import LoadedBundle

router = APIRouter(tags=["search"])
ERRORS = {s: {"model": Problem, "content": {"application/problem+json": {}}} for s in (400, 404, 422, 503)}


def run_search(live: LoadedBundle, req: SearchRequest, metrics: Metrics) -> SearchResponse:
    t0 = time.perf_counter()
    with metrics.stage("encode"):
        vec = live.encoder.encode([req.query])
    with metrics.stage("search"):
        ranked = live.searcher.search(vec, req.k, req.modality)[0]
    with metrics.stage("join"):
        items = live.searcher.items([row for row, _ in ranked])
    hits = [
        Hit(
            id=it.id,
            score=score,
            modality=it.modality,  # type: ignore[arg-type]  # items.sqlite holds only video|image
            uri=it.uri,
            title=it.title,
            duration=it.duration,
        )
        for row, score in ranked
        if (it := items.get(row)) is not None
    ]
    took = (time.perf_counter() - t0) * 1000
    return SearchResponse(
        query=req.query,
        collection=live.collection,
        version=live.version,
        model_id=live.model_id,
        took_ms=round(took, 3),
        hits=hits,
    )


@router.post("/v1/search", response_model=SearchResponse, responses=ERRORS)  # type: ignore[arg-type]
async def search(req: SearchRequest, store: StoreDep, metrics: MetricsDep) -> SearchResponse:
    """Rank the collection's videos and/or images by how well they show ``query``."""
    live = store.get(req.collection)
    # CPU work goes to the thread pool so a large index never blocks the event loop; running small
    # searches inline instead measured no faster (docs/benchmarks.md).
    return await run_in_threadpool(run_search, live, req, metrics)
