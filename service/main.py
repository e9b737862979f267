"""The FastAPI application: bundles are loaded once in the lifespan and hot-swapped by a poller."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import errors
from service.api.routes import health, items, search
from service.config import Settings, get_settings
from service.store import BundleStore

log = logging.getLogger(__name__)


class BodyLimit:
    """Refuse bodies over ``max_bytes`` with 413 before they are read.

    A plain ASGI middleware: Starlette's BaseHTTPMiddleware costs a task and a stream per request.
    Declared sizes are checked up front; chunked bodies are counted as they arrive.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        size = dict(scope["headers"]).get(b"content-length")
        if size is not None and (not size.isdigit() or int(size) > self.max_bytes):
            await self._refuse(scope, receive, send)
            return
        seen, refused = 0, False

        async def counted() -> Message:
            nonlocal seen, refused
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes and not refused:
                refused = True
                await self._refuse(scope, receive, send)
            return {"type": "http.disconnect"} if refused else message  # the app stops reading

        async def guarded(message: Message) -> None:
            if not refused:  # after a 413, whatever the app answers is dropped
                await send(message)

        await self.app(scope, counted, guarded)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await errors.problem(413, f"request body over {self.max_bytes} bytes")(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = BundleStore(
            settings.root, settings.onnx_threads, settings.verify_checksums, settings.default_collection
        )
        await asyncio.to_thread(store.refresh)
        app.state.store = store
        poller = asyncio.create_task(store.poll(settings.poll_seconds)) if settings.poll_seconds > 0 else None
        yield
        if poller:
            poller.cancel()
        for b in store.live.values():
            b.searcher.close()

    app = FastAPI(
        title="xmr",
        version="0.1.0",
        lifespan=lifespan,
        description="Text-to-video and image retrieval over published index bundles.",
    )
    app.state.settings = settings
    errors.install(app)

    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    for module in (search, items, health):
        app.include_router(module.router)
    return app


def app_from_env() -> FastAPI:
    """uvicorn factory: ``uvicorn --factory service.main:app_from_env``."""
    return create_app(get_settings())
