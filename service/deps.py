"""FastAPI dependencies as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.metrics import Metrics
from service.store import BundleStore


async def get_store(request: Request) -> BundleStore:
    store: BundleStore = request.app.state.store
    return store


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


StoreDep = Annotated[BundleStore, Depends(get_store)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
