"""FastAPI dependencies as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.batcher import MicroBatcher
from service.config import Settings
from service.metrics import Metrics
from service.remote_moments import RemoteMoments
from service.store import BundleStore


async def get_store(request: Request) -> BundleStore:
    store: BundleStore = request.app.state.store
    return store


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


async def get_batcher(request: Request) -> MicroBatcher:
    batcher: MicroBatcher = request.app.state.batcher
    return batcher


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_remote_moments(request: Request) -> RemoteMoments | None:
    remote: RemoteMoments | None = getattr(request.app.state, "remote_moments", None)
    return remote


StoreDep = Annotated[BundleStore, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
BatcherDep = Annotated[MicroBatcher, Depends(get_batcher)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
RemoteMomentsDep = Annotated[RemoteMoments | None, Depends(get_remote_moments)]
