"""Where one ``POST /v1/search`` spends its time inside the ASGI app, layer by layer.

    python benchmarks/profile_request.py --root bundles [--collection demo] [--requests 2000] [--pyinstrument]

The app is called directly as an ASGI callable (no socket, no HTTP parser), so what is measured is
xmr's own web path: middleware, routing, body read + JSON parse, request validation and
dependencies, the endpoint (thread hop + encode + search + join), response serialisation and
sending. Each layer is wrapped with ``time.perf_counter_ns`` (inclusive time, mean per request);
the bare FastAPI endpoint (benchmarks/bare_app.py) runs through the same harness for reference.
``--pyinstrument`` prints a call tree of the same loop instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import inspect
import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fastapi.routing  # noqa: E402
import starlette.requests  # noqa: E402
import starlette.responses  # noqa: E402
import starlette.routing  # noqa: E402

from benchmarks.bare_app import create_bare_app  # noqa: E402
from service.config import Settings  # noqa: E402
from service.main import create_app  # noqa: E402

BODY = json.dumps({"query": "a red 7 moves left, then a blue 3 appears", "k": 10}).encode()
TOTALS: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))  # app -> layer label -> ns
CURRENT = ["bare"]  # the app whose request is running


def scope_for(body: bytes) -> dict[str, Any]:
    headers = [(b"host", b"bench"), (b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/search",
        "raw_path": b"/v1/search",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }


async def call(app: Any, body: bytes) -> int:
    """One request through the ASGI app; returns the status."""
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope_for(body), receive, send)
    return status


def timed(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def awrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter_ns()
            try:
                return await fn(*args, **kwargs)
            finally:
                TOTALS[CURRENT[0]][label] += time.perf_counter_ns() - t0

        return awrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter_ns()
        try:
            return fn(*args, **kwargs)
        finally:
            TOTALS[CURRENT[0]][label] += time.perf_counter_ns() - t0

    return wrapper


def instrument() -> list[str]:
    """Wrap each layer of the request path (module globals and class methods are looked up per call)."""
    import service.api.routes.search as search
    import service.fastpath
    import service.limits
    import service.metrics

    layers: list[tuple[str, Any, str]] = [
        (f"xmr middleware ({name}.__call__)", getattr(module, name), "__call__")
        for module, name in (
            (service.limits, "RequestGuard"),
            (service.limits, "BodyLimit"),
            (service.metrics, "RequestTimer"),
            (service.fastpath, "SearchFastPath"),
        )
        if hasattr(module, name)  # older revisions had two middlewares (profile them with this script too)
    ]
    layers += [
        ("routing + handler (Router.__call__)", starlette.routing.Router, "__call__"),
        ("body read (Request.body)", starlette.requests.Request, "body"),
        ("JSON parse (Request.json)", starlette.requests.Request, "json"),
        ("request validation + dependencies", fastapi.routing, "solve_dependencies"),
        ("endpoint (incl. thread hop)", fastapi.routing, "run_endpoint_function"),
        ("response validation + serialisation", fastapi.routing, "serialize_response"),
        ("sending the response (Response.__call__)", starlette.responses.Response, "__call__"),
    ]
    for name in ("answer", "encode_and_rank", "rank", "respond"):
        if hasattr(search, name):
            layers.append((f"  work: search.{name}", search, name))
    for label, owner, attr in layers:
        setattr(owner, attr, timed(label, getattr(owner, attr)))
    return [label for label, _, _ in layers]


async def measure(apps: dict[str, Any], n: int, warmup: int = 200) -> dict[str, float]:
    """Mean microseconds per request of each app over ``n`` requests, the apps taking turns request by
    request (so a busy machine slows both alike); per-layer times land in ``TOTALS[app name]``."""
    async with contextlib.AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
        for _ in range(warmup):
            for app in apps.values():
                assert await call(app, BODY) == 200
        TOTALS.clear()
        spent = dict.fromkeys(apps, 0)
        for _ in range(n):
            for name, app in apps.items():
                CURRENT[0] = name
                t0 = time.perf_counter_ns()
                await call(app, BODY)
                spent[name] += time.perf_counter_ns() - t0
    return {name: ns / n / 1000 for name, ns in spent.items()}


def run(coro: Any) -> Any:
    """On uvloop when installed, as uvicorn runs the app."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, default=Path("bundles"))
    ap.add_argument("--collection", default="demo")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--pyinstrument", action="store_true", help="print a pyinstrument call tree instead")
    args = ap.parse_args()
    global BODY
    BODY = json.dumps({"query": "a red 7 moves left, then a blue 3 appears", "k": 10,
                       "collection": args.collection}).encode()  # fmt: skip
    # As `xmr serve` runs by default: a worker per core, so cheap searches run inline (routes/search.py).
    settings = Settings(root=args.root, poll_seconds=0, default_collection=args.collection, workers=os.cpu_count() or 1)
    app = create_app(settings)
    if args.pyinstrument:
        from pyinstrument import Profiler

        with Profiler(interval=0.0001, async_mode="enabled") as prof:
            run(measure({"xmr": app}, args.requests))
        print(prof.output_text(unicode=True, color=False, show_all=False))
        return
    labels = instrument()
    mean = run(measure({"bare": create_bare_app(), "xmr": app}, args.requests))
    n = args.requests * 1000
    print("| layer (inclusive; us per request) | bare FastAPI endpoint | xmr POST /v1/search |\n|---|---|---|")
    print(f"| whole request (ASGI call) | {mean['bare']:.1f} | {mean['xmr']:.1f} |")
    for label in labels:
        print(f"| {label} | {TOTALS['bare'][label] / n:.1f} | {TOTALS['xmr'][label] / n:.1f} |")


if __name__ == "__main__":
    main()
