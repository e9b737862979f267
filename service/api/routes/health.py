"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.deps import StoreDep
from service.errors import problem

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
def readyz(store: StoreDep) -> dict[str, object] | JSONResponse:
    """Ready when at least one bundle is loaded; 503 with the reason otherwise."""
    if not store.live:
        reason = "; ".join(f"{k}: {v}" for k, v in store.errors.items()) or f"no collection under {store.root}"
        return problem(503, f"not ready: {reason}")
    return {"status": "ready", "collections": {k: v.version for k, v in store.live.items()}}
