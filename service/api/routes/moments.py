"""POST /v1/moments (windows and per-clip saliency inside one video) and the moments of search hits."""

from __future__ import annotations

import time

import numpy as np
from fastapi import APIRouter, HTTPException
from starlette.concurrency import run_in_threadpool

from bundle import MOMENT_HEAD, Item
from service.deps import MetricsDep, StoreDep
from service.metrics import Metrics
from service.moments import Localized, MomentHead
from service.remote_moments import MomentsUnavailable, RemoteMoments
from service.schemas import (
    ClipScore,
    Hit,
    Moment,
    MomentsBatchRequest,
    MomentsBatchResponse,
    MomentsRequest,
    MomentsResponse,
    Problem,
    Segment,
    built,
)
from service.store import BundleStore, LoadedBundle
from xmr.errors import NotFound, NotSupported

router = APIRouter(tags=["moments"])
ERRORS = {s: {"model": Problem, "content": {"application/problem+json": {}}} for s in (400, 404, 409, 422, 503)}


def no_head(live: LoadedBundle) -> str:
    return (
        f"collection {live.collection!r} (version {live.version}) has no moment head ({MOMENT_HEAD}); "
        "rebuild it with `xmr index build` from a run that has a trained moment head"
    )


def head_of(live: LoadedBundle) -> MomentHead:
    if live.moments is None:
        raise NotSupported(no_head(live))
    return live.moments


def find_video(store: BundleStore, video_id: str, collection: str | None) -> tuple[LoadedBundle, Item]:
    """The live bundle holding ``video_id`` (in ``collection`` when given) and its item; 404 / 422 otherwise."""
    if collection is None:
        live, item = store.find_item(video_id)
        return live, require_video(item)
    live = store.get(collection)
    return live, find_video_in(live, video_id)


def focus_of(segment: Segment | None) -> tuple[float, float] | None:
    """The seconds a video's moments are looked for around (``MomentHead.localize``'s ``focus``)."""
    return (segment.start, segment.end) if segment else None


def to_moments(loc: Localized) -> list[Moment]:
    """Built without validation (``built``), like the hits: every field is a float the head computed
    (tests/service/test_speed_paths.py validates the answers against the response model)."""
    return [built(Moment, {"start": round(m.start, 3), "end": round(m.end, 3), "score": m.score}) for m in loc.moments]


def to_saliency(loc: Localized) -> list[ClipScore]:
    """One entry per clip: clip i covers [i / rate, (i + 1) / rate) seconds, the last one ends with the video.

    Rounded as arrays, then built from plain floats: a 30-minute video has 3600 clips (docs/benchmarks.md).
    """
    end = loc.duration if loc.duration > 0 else len(loc.saliency) / loc.clip_rate
    edges = np.arange(len(loc.saliency) + 1) / loc.clip_rate  # (T + 1,) seconds
    starts, ends = np.round(edges[:-1], 3).tolist(), np.round(np.minimum(edges[1:], end), 3).tolist()
    scores = loc.saliency.astype(np.float64).tolist()
    return [ClipScore(start=a, end=b, score=s) for a, b, s in zip(starts, ends, scores, strict=True)]


def localize(live: LoadedBundle, item: Item, req: MomentsRequest, metrics: Metrics, t0: float) -> MomentsResponse:
    head = head_of(live)
    with metrics.stage("moments"):
        (loc,) = head.localize(req.query, [(item.row, item.duration)], req.k)
    return MomentsResponse(
        query=req.query,
        video_id=item.id,
        duration=item.duration,
        collection=live.collection,
        version=live.version,
        took_ms=round((time.perf_counter() - t0) * 1000, 3),
        moments=to_moments(loc),
        saliency=to_saliency(loc),
    )


def add_moments(
    live: LoadedBundle,
    query: str,
    per_hit: int,
    hits: list[Hit],
    rows: list[int],
    remote: RemoteMoments | None = None,
    query_inputs: dict[str, np.ndarray] | None = None,
) -> str | None:
    """Fill ``moments`` of the video hits (``rows`` are the hits' item rows) with one batched head call,
    in process or, with ``remote``, in the ``xmr serve-moments`` process.

    Returns why the hits carry no moments (no head in the bundle, moment service down), else None:
    search answers either way.
    """
    if remote is not None:
        return add_remote_moments(remote, live, query, per_hit, hits)
    if live.moments is None:
        return no_head(live)
    videos = [(hit, row) for hit, row in zip(hits, rows, strict=True) if hit.modality == "video"]
    focus = [focus_of(hit.segment) for hit, _ in videos]
    found = live.moments.localize(
        query,
        [(row, hit.duration) for hit, row in videos],
        per_hit,
        saliency=False,
        focus=focus,
        query_inputs=query_inputs,
    )
    for (hit, _), loc in zip(videos, found, strict=True):
        hit.moments = to_moments(loc)
    return None


def add_remote_moments(
    remote: RemoteMoments, live: LoadedBundle, query: str, per_hit: int, hits: list[Hit]
) -> str | None:
    videos = [hit for hit in hits if hit.modality == "video"]
    if not videos:
        return None
    try:
        found = remote.localize(
            query, live.collection, [hit.id for hit in videos], per_hit, [h.segment for h in videos]
        )
    except MomentsUnavailable as exc:
        return str(exc)
    for hit, moments in zip(videos, found, strict=True):
        hit.moments = moments
    return None


def localize_batch(live: LoadedBundle, req: MomentsBatchRequest) -> MomentsBatchResponse:
    refs = req.refs()
    items = [find_video_in(live, ref.id) for ref in refs]
    focus = [focus_of(ref.segment) for ref in refs]
    found = head_of(live).localize(
        req.query, [(it.row, it.duration) for it in items], req.k, saliency=False, focus=focus
    )
    return MomentsBatchResponse(
        collection=live.collection, version=live.version, moments=[to_moments(f) for f in found]
    )


def find_video_in(live: LoadedBundle, video_id: str) -> Item:
    item = live.searcher.item_by_id(video_id)
    if item is None:
        raise NotFound(f"item {video_id!r} not found in collection {live.collection!r}")
    return require_video(item)


def require_video(item: Item) -> Item:
    if item.modality != "video":
        raise HTTPException(422, f"item {item.id!r} is an {item.modality}, not a video: it has no moments")
    return item


@router.post("/v1/moments", response_model=MomentsResponse, responses=ERRORS)  # type: ignore[arg-type]
async def moments(req: MomentsRequest, store: StoreDep, metrics: MetricsDep) -> MomentsResponse:
    """Where in video ``video_id`` ``query`` happens: the best ``k`` windows (seconds) and each clip's saliency.

    Videos of any length: longer than the head's span they are scored in overlapping windows whose
    predictions are merged. 404: no such item; 422: the item is an image; 409: the bundle has no moment head.
    """
    t0 = time.perf_counter()
    live, item = find_video(store, req.video_id, req.collection)
    head_of(live)  # fail before the thread hop
    return await run_in_threadpool(localize, live, item, req, metrics, t0)


@router.post("/v1/moments/batch", response_model=MomentsBatchResponse, responses=ERRORS)  # type: ignore[arg-type]
async def moments_batch(req: MomentsBatchRequest, store: StoreDep, metrics: MetricsDep) -> MomentsBatchResponse:
    """The best ``k`` moments of each of ``video_ids`` in one batched head call (what a search service with
    ``XMR_MOMENTS_URL`` asks of ``xmr serve-moments``). 404: an unknown id; 422: an image; 409: no moment head."""
    live = store.get(req.collection)
    head_of(live)
    with metrics.stage("moments"):
        return await run_in_threadpool(localize_batch, live, req)
