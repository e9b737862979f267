"""POST /v1/search without FastAPI's request machinery, for the requests that need none of it.

Under load, a search's Python outside the encoder was mostly the framework's: FastAPI's exception
middlewares and exit stacks, the route's request object, body parsing and the body field's validation,
the response class (py-spy, docs/benchmarks.md "Service"). A bare uvicorn ASGI callable that reads the
same body, validates it with the same pydantic model and sends canned bytes costs 0.03 CPU ms a request
here; the bare FastAPI endpoint 0.13-0.2.

This layer sits inside ``RequestGuard`` (body limits, the body timeout and the request timing apply
unchanged) and answers a ``POST /v1/search`` whose body is JSON that ``SearchRequest`` accepts and whose
search succeeds, with the bytes the route sends (the same ``answer``, the same serializer). Every other
request goes to FastAPI untouched, and so does one that fails here (another content type, a body that is
not JSON or that the model refuses, a search that raises), with its body replayed: every error is the
route's own answer. ``XMR_FAST_SEARCH=false`` sends everything through the route.
tests/service/test_fastpath.py compares the two paths' answers.
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.routes.search import answer, router
from service.schemas import SearchRequest

PATH = "/v1/search"
JSON_HEADERS = [(b"content-type", b"application/json")]
# The route's own object, as FastAPI puts it in the scope: RequestGuard labels the request's metrics with its path.
ROUTE = next(r for r in router.routes if getattr(r, "path", None) == PATH and "POST" in getattr(r, "methods", ()))


def is_json(scope: Scope) -> bool:
    """Whether the request says its body is ``application/json`` (parameters such as charset allowed)."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bool(value.split(b";", 1)[0].strip().lower() == b"application/json")
    return False


def replayed(body: bytes, receive: Receive) -> Receive:
    """``receive`` that gives ``body`` (already read) as one message, then defers to ``receive``."""
    pending = True

    async def again() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


class SearchFastPath:
    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app = app
        self.state = state  # the FastAPI app's state: store, metrics, settings, batcher

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST" or not is_json(scope):
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left, or RequestGuard refused the body
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            req = SearchRequest.model_validate(json.loads(body))  # as FastAPI: json.loads, python-mode validation
            response = await answer(self.state, req, t0)
        except Exception:  # the route answers it, with its status and problem detail (service/errors.py)
            await self.app(scope, replayed(body, receive), send)
            return
        scope["route"] = ROUTE
        data = response.__pydantic_serializer__.to_json(response)
        headers = [(b"content-length", str(len(data)).encode()), *JSON_HEADERS]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data})
