"""FastAPI dependencies as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.store import BundleStore


async def get_store(request: Request) -> BundleStore:
    store: BundleStore = request.app.state.store
    return store


StoreDep = Annotated[BundleStore, Depends(get_store)]
