"""The search page (``GET /``) and the media behind each hit (``GET /v1/media/{id}``).

Media are served only for items of a live bundle, from the path recorded when the item was
indexed; a server that cannot read that path (e.g. a container without the media volume)
answers 404 naming the item, never another file.
"""

from __future__ import annotations

from pathlib import Path as FsPath

from fastapi import APIRouter, Path
from fastapi.responses import FileResponse, HTMLResponse

from service.api.routes.search import ERRORS
from service.deps import StoreDep
from xmr.errors import NotFound

router = APIRouter(tags=["media"])
PAGE = (FsPath(__file__).resolve().parents[2] / "static" / "index.html").read_text()  # read once, at import
MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
}


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def page() -> HTMLResponse:
    """A small search page: type a query, see the hits, play the videos."""
    return HTMLResponse(PAGE)


@router.get("/v1/media/{item_id}", response_class=FileResponse, responses=ERRORS)  # type: ignore[arg-type]
@router.head("/v1/media/{item_id}", response_class=FileResponse, responses=ERRORS)  # type: ignore[arg-type]
def media(store: StoreDep, item_id: str = Path(max_length=200)) -> FileResponse:
    """The item's video or image file (HTTP range requests supported, so players can seek; HEAD for players
    and caches that ask for the size and type first)."""
    _, item = store.find_item(item_id)
    path = FsPath(str(item.metadata.get("path", "")))
    if not path.is_file():
        raise NotFound(f"media file for item {item_id!r} is not available on this server")
    return FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream"))
