"""service/fastpath.py against its oracle, the route: the same requests to an app with the fast path and to
one without (XMR_FAST_SEARCH=false) give the same status, content type and body, errors included; the
fast path answers the valid requests itself and hands every other one to the route with its body intact."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import service.api.routes.search as search_route
import service.fastpath as fastpath
from service.config import Settings
from service.main import create_app
from tests.standin_moment_head import republish_with_head

Q = "a red 7 moves left"
JSON = "application/json"
# (body, content type, answered by the fast path)
CASES: list[tuple[Any, str, bool]] = [
    ({"query": Q}, JSON, True),
    ({"query": Q, "k": 3, "modality": "video"}, JSON, True),
    (
        {"query": f"  {Q}  ", "k": 1000, "modality": "image", "collection": "demo"},
        "application/json; charset=utf-8",
        True,
    ),
    ({"query": Q, "k": 4, "moments": True}, JSON, True),
    ({"query": Q, "k": 2, "moments": 2, "modality": "video"}, JSON, True),
    ({"query": Q, "k": 5.0}, JSON, True),
    ({"query": Q, "collection": "nope"}, JSON, False),  # 404 from the search: the route answers
    ({"query": "\u00a0"}, JSON, False),  # blank query: 422
    ({"query": Q, "k": "5"}, JSON, False),
    ({"query": Q, "k": True}, JSON, False),
    ({"query": Q, "moments": 0}, JSON, False),
    ({"query": Q, "extra": 1}, JSON, False),
    ({"k": 3}, JSON, False),
    ([Q], JSON, False),
    (b'{"query": "a red', JSON, False),  # not JSON: 400
    (b"", JSON, False),
    (b'{"query": "a red 7"}', "text/plain", False),  # another content type: FastAPI's own rules decide
    (b'{"query": "a red 7"}', "", False),
    ('{"query": "a r\u00e9d 7"}'.encode("latin-1"), JSON, False),  # not UTF-8
]


@pytest.fixture(scope="module")
def root(bundle_root: Path, trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fastpath") / "root"
    shutil.copytree(bundle_root, root)
    republish_with_head(root, "demo", trained_run, span_clips=6)  # so that moments: true is a 200
    return root


@pytest.fixture(scope="module")
def fast_and_route(root: Path) -> Iterator[tuple[TestClient, TestClient]]:
    def settings(fast: bool) -> Settings:
        return Settings(root=root, poll_seconds=0, batch_min_encode_ms=1e9, fast_search=fast)

    with TestClient(create_app(settings(True))) as fast, TestClient(create_app(settings(False))) as route:
        yield fast, route


def post(client: TestClient, body: Any, content_type: str) -> tuple[int, str, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": content_type} if content_type else {}
    r = client.post("/v1/search", content=data, headers=headers)
    payload = r.json()
    payload.pop("took_ms", None)  # the one field that differs between two runs of the same search
    return r.status_code, r.headers["content-type"], payload


@pytest.mark.parametrize(("body", "content_type", "fast"), CASES)
def test_fast_path_answers_as_the_route_does(
    fast_and_route: tuple[TestClient, TestClient],
    monkeypatch: pytest.MonkeyPatch,
    body: Any,
    content_type: str,
    fast: bool,
) -> None:
    calls: list[str] = []
    for module, name in ((fastpath, "fast path"), (search_route, "route")):
        real = module.answer

        async def spy(*a: Any, _real: Any = real, _name: str = name) -> Any:
            calls.append(_name)
            return await _real(*a)

        monkeypatch.setattr(module, "answer", spy)
    got = post(fast_and_route[0], body, content_type)
    answered_by = list(calls)
    calls.clear()
    want = post(fast_and_route[1], body, content_type)
    assert got == want
    assert (got[0] == 200) is fast, got
    if fast:
        assert answered_by == ["fast path"]  # FastAPI's route never saw it
        assert got[2]["hits"], got
    else:
        assert "fast path" not in answered_by or answered_by == ["fast path", "route"]  # a search that raised


def test_fast_path_labels_its_requests_like_the_route(fast_and_route: tuple[TestClient, TestClient]) -> None:
    fast = fast_and_route[0]
    fast.post("/v1/search", json={"query": Q, "k": 2})
    line = 'xmr_http_request_seconds_count{method="POST",route="/v1/search",status="200"}'
    before = next(float(x.split()[-1]) for x in fast.get("/metrics").text.splitlines() if x.startswith(line))
    fast.post("/v1/search", json={"query": Q, "k": 2})
    after = next(float(x.split()[-1]) for x in fast.get("/metrics").text.splitlines() if x.startswith(line))
    assert after == before + 1


def test_a_refused_request_reaches_the_route_with_its_body_whole(fast_and_route: tuple[TestClient, TestClient]) -> None:
    """A body that arrives in several messages and fails here is replayed to the route as one message; what
    the client sends after it (a disconnect) still reaches the route."""
    seen: list[dict[str, Any]] = []

    async def route(scope: Any, receive: Any, send: Any) -> None:
        seen.append(await receive())
        seen.append(await receive())
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    layer = fastpath.SearchFastPath(route, fast_and_route[0].app.state)  # type: ignore[attr-defined]
    parts = [b'{"query": ', b'"a red 7", "k": ', b'"five"}']
    messages = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]
    messages.append({"type": "http.disconnect"})
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/search",
        "headers": [(b"content-type", b"application/json")],
    }
    asyncio.run(layer(scope, receive, send))
    assert seen == [{"type": "http.request", "body": b"".join(parts), "more_body": False}, {"type": "http.disconnect"}]
    assert sent[0]["status"] == 418


def test_the_fast_path_can_be_turned_off(fast_and_route: tuple[TestClient, TestClient], root: Path) -> None:
    """XMR_FAST_SEARCH=false turns it off, and so does XMR_OTEL=true (FastAPI's spans come from the route)."""
    fast, route = (c.app.user_middleware for c in fast_and_route)  # type: ignore[attr-defined]
    assert [m.cls for m in fast].count(fastpath.SearchFastPath) == 1
    assert fastpath.SearchFastPath not in [m.cls for m in route]
    traced = create_app(Settings(root=root, poll_seconds=0, otel=True))
    assert fastpath.SearchFastPath not in [m.cls for m in traced.user_middleware]
