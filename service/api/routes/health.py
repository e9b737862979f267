"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from service.deps import MetricsDep, StoreDep
from service.errors import problem

router = APIRouter(tags=["health"])


# healthz and readyz only read memory: async, so they never hop to the thread pool (whose first use also
# imports anyio's backend: about 25 ms that a cold start's first readiness probe would otherwise wait for).
@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def readyz(store: StoreDep) -> dict[str, object] | JSONResponse:
    """Ready when at least one bundle is loaded; 503 with the reason otherwise."""
    state = store.snapshot()
    if not state.live:
        reason = "; ".join(f"{k}: {v}" for k, v in state.errors.items()) or f"no collection under {store.root}"
        return problem(503, f"not ready: {reason}")
    return {"status": "ready", "collections": {k: v.version for k, v in state.live.items()}}


@router.get("/metrics", response_class=Response)
def metrics(m: MetricsDep) -> Response:
    """Prometheus metrics: request and per-stage search latency histograms, live bundles."""
    body, content_type = m.render()
    return Response(body, media_type=content_type)
