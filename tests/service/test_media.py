"""The search page and the media endpoint, through the real ASGI stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from service.main import create_app


@pytest.fixture(scope="module")
def client(bundle_root: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(root=bundle_root, poll_seconds=0))) as c:
        yield c


def test_search_page_calls_the_api(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'fetch("/v1/search"' in r.text and "/v1/media/" in r.text


def test_media_is_the_indexed_file_with_range_support(client: TestClient, corpus: Path) -> None:
    want = (corpus / "videos" / "vid00000.mp4").read_bytes()
    r = client.get("/v1/media/vid00000")
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4" and r.content == want
    part = client.get("/v1/media/vid00000", headers={"range": "bytes=10-109"})
    assert part.status_code == 206 and part.content == want[10:110]
    img = client.get("/v1/media/img00000")
    assert img.status_code == 200 and img.headers["content-type"] == "image/png"


def test_unknown_item_and_missing_file_are_404(client: TestClient, corpus: Path) -> None:
    r = client.get("/v1/media/nope")
    assert r.status_code == 404 and "item 'nope' not found" in r.json()["detail"]
    assert "path" not in client.get("/v1/items/vid00001").json()["metadata"]  # no server paths in answers
    path = corpus / "videos" / "vid00001.mp4"
    assert path.is_file() and client.get("/v1/media/vid00001").status_code == 200
    hidden = path.with_suffix(".hidden")
    path.rename(hidden)
    try:
        r = client.get("/v1/media/vid00001")
        assert r.status_code == 404 and "not available on this server" in r.json()["detail"]
    finally:
        hidden.rename(path)  # the file belongs to the session's shared corpus
