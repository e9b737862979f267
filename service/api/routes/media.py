"""The search page (``GET /``) and the media behind each hit (``GET /v1/media/{id}``).

Media are served only for items of a live bundle: the item's uri resolved against the bundle's
media root (recorded absolute by the indexer), or against ``XMR_MEDIA_ROOT`` when the media folder
is mounted elsewhere on this server. A server that cannot read the file (e.g. a container without
the media volume) answers 404 naming the item, never another file.
"""

from __future__ import annotations

from pathlib import Path as FsPath

from fastapi import APIRouter, Path
from fastapi.responses import FileResponse, HTMLResponse

import bundle
from service.api.routes.search import ERRORS
from service.deps import SettingsDep, StoreDep
from service.schemas import MAX_ID_CHARS
from xmr.errors import NotFound

router = APIRouter(tags=["media"])
PAGE = (FsPath(__file__).resolve().parents[2] / "static" / "index.html").read_text()  # read once, at import
MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".ogv": "video/ogg",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".bmp": "image/bmp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
}


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def page() -> HTMLResponse:
    """A small search page: type a query, see the hits, play the videos."""
    return HTMLResponse(PAGE)


@router.get("/v1/media/{item_id:path}", response_class=FileResponse, responses=ERRORS)  # type: ignore[arg-type]
@router.head("/v1/media/{item_id:path}", response_class=FileResponse, responses=ERRORS)  # type: ignore[arg-type]
def media(store: StoreDep, settings: SettingsDep, item_id: str = Path(max_length=MAX_ID_CHARS)) -> FileResponse:
    """The item's video or image file (HTTP range requests supported, so players can seek; HEAD for players
    and caches that ask for the size and type first)."""
    live, item = store.find_item(item_id)
    path = bundle.media_path(live.manifest, item, settings.media_root)
    if not path.is_file():
        raise NotFound(f"media file for item {item_id!r} is not available on this server")
    return FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream"))
