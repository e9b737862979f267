"""Media found wherever the server runs: the bundle records its media root (absolute), a server in
another working directory serves the files, ``XMR_MEDIA_ROOT`` maps a moved media folder, ids that
are paths (``a/clip.mp4``) work in URLs, and no answer carries a server path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import bundle
from indexer.build import build
from service.config import Settings
from service.main import create_app


@pytest.fixture(scope="module")
def relative_build(corpus: Path, trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle built from ``media`` given as a *relative* folder (the indexer ran inside ``work``)."""
    base = tmp_path_factory.mktemp("mediaroot")
    media = base / "work" / "media"
    (media / "a").mkdir(parents=True)
    shutil.copy(corpus / "videos" / "vid00000.mp4", media / "a" / "clip one.mp4")
    shutil.copy(corpus / "images" / "img00000.png", media / "photo.png")
    mp = pytest.MonkeyPatch()
    mp.chdir(base / "work")
    try:
        build(Path("media"), "rel", Path("../root"), trained_run)
    finally:
        mp.undo()
    return base


def test_served_from_another_working_directory(relative_build: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = relative_build / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    monkeypatch.chdir(elsewhere)
    want = (relative_build / "work" / "media" / "a" / "clip one.mp4").read_bytes()
    with TestClient(create_app(Settings(root=relative_build / "root", poll_seconds=0))) as c:
        r = c.get("/v1/media/a/clip%20one.mp4")
        assert r.status_code == 200 and r.content == want
        assert c.get("/v1/media/" + "a%2Fclip%20one.mp4").content == want  # the page's encodeURIComponent form
        item = c.get("/v1/items/a/clip one.mp4").json()
        assert item["uri"] == "a/clip one.mp4" and "path" not in item["metadata"]
        assert str(relative_build) not in json.dumps(item)
        hits = c.post("/v1/search", json={"query": "a red 7", "k": 5}).json()["hits"]
        assert {h["id"] for h in hits} == {"a/clip one.mp4", "photo.png"}
        assert all(h["duration"] == round(h["duration"], 3) for h in hits)


def test_moved_media_are_found_through_xmr_media_root(relative_build: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    moved = relative_build / "mounted" / "media"
    shutil.copytree(relative_build / "work" / "media", moved, dirs_exist_ok=True)
    version = bundle.read_current(relative_build / "root", "rel")
    manifest = bundle.read_manifest(relative_build / "root" / "rel" / str(version))
    assert manifest[bundle.MEDIA_ROOT] == str((relative_build / "work" / "media").resolve())
    (relative_build / "work" / "media" / "photo.png").rename(relative_build / "photo.bak")
    try:
        with TestClient(create_app(Settings(root=relative_build / "root", poll_seconds=0))) as c:
            assert c.get("/v1/media/photo.png").status_code == 404  # not at the recorded root any more
        monkeypatch.setenv("XMR_MEDIA_ROOT", str(moved))
        with TestClient(create_app(Settings(root=relative_build / "root", poll_seconds=0))) as c:
            r = c.get("/v1/media/photo.png")
            assert r.status_code == 200 and r.headers["content-type"] == "image/png"
            assert r.content == (moved / "photo.png").read_bytes()
    finally:
        (relative_build / "photo.bak").rename(relative_build / "work" / "media" / "photo.png")


def test_media_path_resolution() -> None:
    item = bundle.Item(0, "x", "video", "a/x.mp4", 1.0, "", [], {})
    absolute = bundle.Item(0, "y", "video", "/data/m/b/y.mp4", 1.0, "", [], {})
    other = bundle.Item(0, "z", "video", "/srv/z.mp4", 1.0, "", [], {})
    manifest = {bundle.MEDIA_ROOT: "/data/m"}
    assert bundle.media_path(manifest, item) == Path("/data/m/a/x.mp4")
    assert bundle.media_path(manifest, item, Path("/mnt")) == Path("/mnt/a/x.mp4")
    assert bundle.media_path(manifest, absolute, Path("/mnt")) == Path("/mnt/b/y.mp4")
    assert bundle.media_path(manifest, other, Path("/mnt")) == Path("/srv/z.mp4")


def test_item_ids_up_to_the_limit(relative_build: Path) -> None:
    with TestClient(create_app(Settings(root=relative_build / "root", poll_seconds=0))) as c:
        for route in ("/v1/items/", "/v1/media/"):
            assert c.get(route + "d/" * 509 + "xx.mp4").status_code == 404  # 1,024 characters: looked up
            too_long = c.get(route + "d/" * 509 + "xxx.mp4")
            assert too_long.status_code == 422 and "at most 1024 characters" in too_long.json()["detail"]
