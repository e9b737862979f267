"""The app's one ASGI middleware: request timing (Prometheus) and the limits on request bodies.

Merged into one layer because every layer costs a coroutine frame and a closure per request
(benchmarks/profile_request.py). A plain ASGI middleware: Starlette's BaseHTTPMiddleware costs a
task and a stream per request.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import errors
from service.metrics import Metrics

DISCONNECT: Message = {"type": "http.disconnect"}


class RequestGuard:
    """Time every HTTP request by route template, and refuse bad bodies with problem+json.

    - 400: a ``Content-Length`` that is not a number (uvicorn's own parser usually answers this
      first, in text/plain, before the app sees the request).
    - 413: a body over ``max_bytes``; declared sizes are checked up front, chunked bodies are
      counted as they arrive.
    - 408: the body has not fully arrived ``body_timeout_s`` seconds after the request began
      (a client that promises more bytes than it sends would otherwise hold its connection).
    Refusals of a body close the connection: the unread rest of it cannot be parsed as a request.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, max_bytes: int, body_timeout_s: float) -> None:
        self.app = app
        self.metrics = metrics
        self.max_bytes = max_bytes
        self.body_timeout_s = body_timeout_s
        self._children: dict[tuple[str, str, int], Any] = {}  # prometheus label lookups are slow; cache them

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0, status = time.perf_counter(), 500
        refused = False

        async def refuse(code: int, detail: str) -> None:
            nonlocal refused, status
            if not refused:
                refused, status = True, code
                response = errors.problem(code, detail, headers={"connection": "close"})
                await response(scope, receive, send)

        async def timed_send(message: Message) -> None:
            nonlocal status
            if refused:  # after a refusal, whatever the app answers is dropped
                return
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            problem = self._check_declared(scope)
            if problem:
                await refuse(*problem)
            else:
                await self.app(scope, self._guard_body(receive, refuse, lambda: refused), timed_send)
        finally:
            self._observe(scope, status, time.perf_counter() - t0)

    def _check_declared(self, scope: Scope) -> tuple[int, str] | None:
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    return 400, f"Content-Length {value[:40].decode('latin-1')!r} is not a number of bytes"
                if int(value) > self.max_bytes:
                    return 413, f"request body over {self.max_bytes} bytes"
                return None
        return None

    def _guard_body(self, receive: Receive, refuse: Any, is_refused: Any) -> Receive:
        """``receive`` that counts body bytes and gives up on a body still incomplete at the deadline."""
        deadline = asyncio.get_running_loop().time() + self.body_timeout_s
        seen, body_done = 0, False

        async def guarded() -> Message:
            nonlocal seen, body_done
            if is_refused():
                return DISCONNECT  # the app stops reading
            if body_done:  # e.g. a streaming response listening for the client going away: no deadline
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                await refuse(408, f"request body not received within {self.body_timeout_s:g} s")
                return DISCONNECT
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if seen > self.max_bytes:
                    await refuse(413, f"request body over {self.max_bytes} bytes")
                    return DISCONNECT
            return message

        return guarded

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", "unmatched")  # the template, not the raw path
        key = (scope["method"], route, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.metrics.requests.labels(key[0], key[1], str(status))
        child.observe(seconds)
