"""Request limits enforced before the app sees a request."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import errors


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
