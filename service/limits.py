"""The app's one ASGI middleware: request timing (Prometheus) and the limits on request bodies.

Merged into one layer because every layer costs a coroutine frame and a closure per request
(benchmarks/profile_request.py). A plain ASGI middleware: Starlette's BaseHTTPMiddleware costs a
task and a stream per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import errors
from service.metrics import Metrics

DRAIN_BYTES = 1 << 20  # how much of a refused chunked body is read and dropped so the 413 arrives intact

DISCONNECT: Message = {"type": "http.disconnect"}


class RequestGuard:
    """Time every HTTP request by route template, and refuse bad bodies with problem+json.

    - 400: a ``Content-Length`` that is not a number (uvicorn's own parser usually answers this
      first, in text/plain, before the app sees the request).
    - 413: a body over ``max_bytes``; declared sizes are checked up front, chunked bodies are
      counted as they arrive.
    - 408: the body has not fully arrived ``body_timeout_s`` seconds after the request began (a
      client that promises more bytes than it sends would otherwise hold its connection); checked
      by a periodic sweep, so the answer may come up to a quarter of the timeout (at most 1 s) later.
    Refusals of a body close the connection: the unread rest of it cannot be parsed as a request.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, max_bytes: int, body_timeout_s: float) -> None:
        self.app = app
        self.metrics = metrics
        self.max_bytes = max_bytes
        self.body_timeout_s = body_timeout_s
        self._children: dict[tuple[str, str, int], Any] = {}  # prometheus label lookups are slow; cache them
        # Body reads in progress (task -> deadline), swept every quarter of the timeout, so a 408 comes
        # between body_timeout_s and 1.25 x body_timeout_s (at most 1 s late) after the request began.
        self._reading: dict[asyncio.Task[Any], float] = {}
        self._late: set[asyncio.Task[Any]] = set()
        self._sweep_s = min(1.0, max(0.01, body_timeout_s / 4))
        self._loop: asyncio.AbstractEventLoop | None = None

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
        loop = asyncio.get_running_loop()
        self._watch(loop)
        deadline = loop.time() + self.body_timeout_s
        seen, body_done = 0, False

        async def guarded() -> Message:
            nonlocal seen, body_done
            if is_refused():
                return DISCONNECT  # the app stops reading
            if body_done:  # e.g. a streaming response listening for the client going away: no deadline
                return await receive()
            task = asyncio.current_task()
            assert task is not None
            self._reading[task] = deadline  # a dict entry, not a timer: the sweep finds it if it is late
            try:
                message = await receive()
            except asyncio.CancelledError:
                if task not in self._late:
                    raise
                self._late.discard(task)
                task.uncancel()
                await refuse(408, f"request body not received within {self.body_timeout_s:g} s")
                return DISCONNECT
            finally:
                self._reading.pop(task, None)
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if seen > self.max_bytes:
                    if not body_done:
                        await self._drain(receive, deadline - loop.time())
                    await refuse(413, f"request body over {self.max_bytes} bytes")
                    return DISCONNECT
            return message

        return guarded

    async def _drain(self, receive: Receive, seconds: float) -> None:
        """Read and drop the rest of a refused body, up to DRAIN_BYTES and the body deadline.

        Closing with unread bytes in the socket makes the kernel answer with a reset that can
        destroy the 413 before the client reads it; a client a little over the limit gets its answer.
        """
        drained = 0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(seconds, 0.0)):
                while drained < DRAIN_BYTES:
                    message = await receive()
                    drained += len(message.get("body", b""))
                    if message["type"] != "http.request" or not message.get("more_body", False):
                        return

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the periodic sweep on this event loop (once per loop; a new loop replaces the old one)."""
        if self._loop is not loop:
            self._loop = loop
            loop.call_later(self._sweep_s, self._sweep, loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        """Cancel the body read of every request past its deadline (its ``receive`` turns that into a 408).

        One timer per ``_sweep_s`` for the whole app instead of one per request: a timer per request
        (``asyncio.timeout``) measured 30-40 us per request under uvloop, the sweep's dict entry ~0.3 us.
        """
        if self._loop is not loop or loop.is_closed():
            return
        now = loop.time()
        for task, deadline in list(self._reading.items()):
            if deadline <= now and not task.done():
                del self._reading[task]
                self._late.add(task)
                task.cancel()
        loop.call_later(self._sweep_s, self._sweep, loop)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", "unmatched")  # the template, not the raw path
        key = (scope["method"], route, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.metrics.requests.labels(key[0], key[1], str(status))
        child.observe(seconds)
