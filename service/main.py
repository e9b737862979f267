"""The FastAPI application: bundles are loaded once in the lifespan and hot-swapped by a poller."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig

from service import errors
from service.api.routes import docs, health, items, media, moments, search
from service.batcher import MicroBatcher
from service.config import Settings, get_settings
from service.fastpath import SearchFastPath
from service.limits import RequestGuard
from service.metrics import Metrics
from service.remote_moments import CircuitBreaker, RemoteMoments
from service.schemas import Problem
from service.store import BundleStore

log = logging.getLogger(__name__)


def telemetry(on: bool) -> TelemetryConfig:
    """FastAPI's native OpenTelemetry settings: all on (its defaults) or all off."""
    return {"tracing": on, "metrics": on, "logs": on, "operation_spans": on}


def create_app(settings: Settings | None = None, store: BundleStore | None = None) -> FastAPI:
    """The app for ``settings``. ``store``: one whose loading began earlier (``BundleStore.start_refresh``,
    as ``xmr serve`` does while this module imports); by default the app makes its own at start-up."""
    settings = settings or get_settings()
    preloaded = [store] if store else []  # the first start-up only: a later one (restart) loads afresh

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = preloaded.pop() if preloaded else BundleStore.from_settings(settings)
        await asyncio.to_thread(store.refresh)  # waits for a background refresh that holds the lock
        app.state.store = store
        metrics.watch(store)
        poller = asyncio.create_task(store.poll(settings.poll_seconds)) if settings.poll_seconds > 0 else None
        in_flight = settings.batch_in_flight or max(1, (os.cpu_count() or 1) // max(1, settings.workers))
        app.state.batcher = MicroBatcher(
            settings.batch_max, settings.batch_wait_ms, metrics.batch_sizes.observe, in_flight
        )
        app.state.batcher.start()
        app.state.remote_moments = remote_moments(settings)
        yield
        if app.state.remote_moments:
            app.state.remote_moments.close()
        await app.state.batcher.stop()
        if poller:
            poller.cancel()
        for b in store.live.values():
            b.searcher.close()

    app = FastAPI(
        title="xmr",
        version="0.1.0",
        lifespan=lifespan,
        description="Text-to-video and image retrieval over published index bundles.",
        docs_url=None,  # FastAPI's pages load their assets from a CDN; ours are served locally (routes/docs.py)
        redoc_url=None,
        # RequestGuard answers these for every operation, before any route: the schema says so everywhere.
        responses={s: {"model": Problem, "content": {"application/problem+json": {}}} for s in (408, 413)},
        # FastAPI's native OpenTelemetry checks the global providers on every request (~14% of the event
        # loop's time under load, benchmarks/profile_request.py); xmr's own metrics are Prometheus
        # (/metrics). XMR_OTEL=true turns FastAPI's spans, metrics and logs back on.
        telemetry=telemetry(settings.otel),
    )
    metrics = Metrics()
    app.state.metrics = metrics
    app.state.settings = settings
    # Each worker has a core of its own (xmr serve --workers = cores): threads add no parallelism to it.
    app.state.own_core = settings.workers >= (os.cpu_count() or 1)
    errors.install(app)

    # Added first, so RequestGuard wraps it. Not with XMR_OTEL: FastAPI's operation spans (endpoint,
    # serialisation) and the span's route come from the route, which the fast path skips.
    if settings.fast_search and not settings.otel and settings.role == "all":
        app.add_middleware(SearchFastPath, state=app.state)
    app.add_middleware(
        RequestGuard, metrics=metrics, max_bytes=settings.max_body_bytes, body_timeout_s=settings.body_timeout_s
    )
    for module in (search, moments, items, media, health) if settings.role == "all" else (moments, health):
        app.include_router(module.router)
    docs.install(app)
    return app


def remote_moments(settings: Settings) -> RemoteMoments | None:
    """The client of a separate moment service when ``XMR_MOMENTS_URL`` is set (search then asks it)."""
    if not settings.moments_url or settings.role == "moments":
        return None
    breaker = CircuitBreaker(settings.moments_breaker_failures, settings.moments_breaker_s)
    return RemoteMoments(settings.moments_url, settings.moments_timeout_s, settings.moments_retries, breaker)


def app_from_env() -> FastAPI:
    """uvicorn factory: ``uvicorn --factory service.main:app_from_env`` (``xmr serve --workers N`` uses
    service.worker's, which starts loading the bundles before importing this module)."""
    return create_app(get_settings())
