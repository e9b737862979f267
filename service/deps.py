"""FastAPI dependencies as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.config import Settings
from service.store import BundleStore


async def get_store(request: Request) -> BundleStore:
    store: BundleStore = request.app.state.store
    return store


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


StoreDep = Annotated[BundleStore, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
