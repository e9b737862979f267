"""Input manifests: a jsonl or csv listing media, or a plain directory of media files."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xmr.errors import ManifestError

VIDEO_EXT = {".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v"}
IMAGE_EXT = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


@dataclass
class InputItem:
    """One media file to index; ``path`` is ``uri`` resolved against the manifest's folder."""

    id: str
    modality: str
    uri: str
    path: Path
    title: str = ""
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


def modality_of(uri: str) -> str:
    ext = Path(uri).suffix.lower()
    if ext in VIDEO_EXT:
        return "video"
    if ext in IMAGE_EXT:
        return "image"
    raise ManifestError(f"{uri}: unknown media type {ext!r} (videos: {sorted(VIDEO_EXT)}, images: {sorted(IMAGE_EXT)})")


def _item(rec: dict[str, Any], base: Path, where: str) -> InputItem:
    uri = rec.get("uri") or rec.get("path")
    if not isinstance(uri, str) or not uri:
        raise ManifestError(f"{where}: no 'uri'")
    captions = rec.get("captions") or []
    title = rec.get("title") or rec.get("caption") or (captions[0]["caption"] if captions else "")
    meta = {k: v for k, v in rec.items() if k not in {"id", "uri", "path", "modality", "title", "tags", "duration"}}
    return InputItem(
        id=str(rec.get("id") or Path(uri).stem),
        modality=str(rec.get("modality") or modality_of(uri)),
        uri=uri,
        path=(base / uri) if not Path(uri).is_absolute() else Path(uri),
        title=str(title),
        tags=[str(t) for t in rec.get("tags", [])],
        metadata=meta,
    )


def read_manifest(path: Path) -> list[InputItem]:
    """Items listed by ``path`` (.jsonl, .csv with a ``uri`` column, or a directory).

    Raises ``ManifestError`` naming the file and line of the first malformed entry, or duplicate ids.
    """
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_EXT | IMAGE_EXT)
        items = [_item({"uri": p.relative_to(path).as_posix()}, path, str(p)) for p in files]
    elif not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    elif path.suffix == ".csv":
        with path.open(newline="") as f:
            items = [_item(dict(r), path.parent, f"{path}:{i + 2}") for i, r in enumerate(csv.DictReader(f))]
    else:
        items = [
            _item(_json_line(line, f"{path}:{i + 1}"), path.parent, f"{path}:{i + 1}")
            for i, line in enumerate(path.read_text().splitlines())
            if line.strip()
        ]
    seen: set[str] = set()
    for it in items:
        if it.id in seen:
            raise ManifestError(f"{path}: duplicate id {it.id!r}")
        seen.add(it.id)
    if not items:
        raise ManifestError(f"{path}: no media listed")
    return items


def _json_line(line: str, where: str) -> dict[str, Any]:
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{where}: not valid JSON ({exc.msg})") from exc
    if not isinstance(rec, dict):
        raise ManifestError(f"{where}: expected a JSON object")
    return rec
