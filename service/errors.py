"""Errors to ``application/problem+json`` (RFC 9457), translated once, here."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from xmr.errors import NotFound, NotReady, NotSupported, XmrError

log = logging.getLogger(__name__)
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# 409: the request is fine but the live version cannot serve it (e.g. no moment head); a 5xx would say the
# server failed, which it did not.
STATUS: dict[type[XmrError], int] = {NotFound: 404, NotReady: 503, NotSupported: 409}


def problem(status: int, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    title = HTTPStatus(status).phrase
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
        headers=headers,
    )


def _validation_detail(exc: RequestValidationError) -> tuple[int, str]:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, "request body is not valid JSON"
    parts = []
    for e in errors[:5]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
        parts.append(f"{loc or 'body'}: {e.get('msg', 'invalid')}")
    return 422, "; ".join(parts)


def allowed_methods(request: Request) -> str:
    """RFC 9110's ``Allow`` for a 405: every method some route answers on this path. Asked of the routes
    themselves, since Starlette names only the first partial match's and GET and HEAD are two routes."""
    routes = request.app.router.routes
    allowed = [m for m in METHODS if any(r.matches({**request.scope, "method": m})[0] == Match.FULL for r in routes)]
    return ", ".join(allowed)


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem(*_validation_detail(exc))

    @app.exception_handler(XmrError)
    async def _xmr(_: Request, exc: XmrError) -> JSONResponse:
        return problem(STATUS.get(type(exc), 500), str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = {**(exc.headers or {}), "Allow": allowed_methods(request)} if exc.status_code == 405 else exc.headers
        return problem(exc.status_code, str(exc.detail), headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem(500, f"internal error ({type(exc).__name__})")
