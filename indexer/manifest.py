"""Input manifests: a jsonl or csv listing media, or a plain directory of media files.

Ids: a folder's files take the path relative to the folder, extension included (``a/clip.mp4``),
so two files can never share one; a jsonl/csv line keeps its explicit ``id``, or else its ``uri``
as written. Two lines with the same id are an error naming both lines.

Kinds come from the extension: ``VIDEO_EXT`` go to FFmpeg (through PyAV), ``IMAGE_EXT`` to Pillow,
``AUDIO_EXT`` to FFmpeg too (so they are reported as having no video stream); any other file is
listed with modality ``unsupported`` and reported as skipped by the indexer, never dropped.
Hidden files and folders (a leading ``.``, e.g. ``.DS_Store``, ``.git``) of a folder are not media.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xmr.errors import ManifestError

VIDEO_EXT = {
    *(".mp4", ".m4v", ".mov", ".qt", ".mkv", ".webm", ".avi", ".wmv", ".asf", ".flv", ".f4v", ".ogv", ".ogg"),
    *(".mpg", ".mpeg", ".m2v", ".vob", ".ts", ".mts", ".m2ts", ".3gp", ".3g2", ".mxf", ".nut", ".y4m", ".dv"),
    *(".divx", ".rm", ".rmvb", ".ivf", ".h264", ".264", ".hevc", ".h265", ".obu"),
}
IMAGE_EXT = {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".webp", ".bmp", ".dib", ".tif", ".tiff", ".gif"}
AUDIO_EXT = {".mp3", ".wav", ".flac", ".aac", ".m4a", ".opus", ".oga", ".wma", ".aiff", ".aif", ".ac3", ".amr"}
UNSUPPORTED = "unsupported"


@dataclass
class InputItem:
    """One media file to index; ``path`` is ``uri`` resolved against the manifest's folder.

    ``modality``: video, image, or ``unsupported`` (skipped with that reason by the indexer).
    """

    id: str
    modality: str
    uri: str
    path: Path
    title: str = ""
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


def modality_of(uri: str) -> str:
    """video (incl. audio-only kinds, which FFmpeg reports as such), image, or unsupported."""
    ext = Path(uri).suffix.lower()
    if ext in VIDEO_EXT or ext in AUDIO_EXT:
        return "video"
    return "image" if ext in IMAGE_EXT else UNSUPPORTED


def media_base(path: Path) -> Path:
    """The folder relative uris of manifest ``path`` resolve against, absolute (the bundle records it)."""
    return (path if path.is_dir() else path.parent).resolve()


def _item(rec: dict[str, Any], base: Path, where: str) -> InputItem:
    uri = rec.get("uri") or rec.get("path")
    if not isinstance(uri, str) or not uri:
        raise ManifestError(f"{where}: no 'uri'")
    captions = rec.get("captions") or []
    title = rec.get("title") or rec.get("caption") or (captions[0]["caption"] if captions else "")
    meta = {k: v for k, v in rec.items() if k not in {"id", "uri", "path", "modality", "title", "tags", "duration"}}
    return InputItem(
        id=str(rec.get("id") or uri),
        modality=str(rec.get("modality") or modality_of(uri)),
        uri=uri,
        path=(base / uri) if not Path(uri).is_absolute() else Path(uri),
        title=str(title),
        tags=[str(t) for t in rec.get("tags", [])],
        metadata=meta,
    )


def _folder(path: Path) -> list[tuple[str, InputItem]]:
    files = sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p.relative_to(path)))
    return [(str(p), _item({"uri": p.relative_to(path).as_posix()}, path, str(p))) for p in files]


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def read_manifest(path: Path) -> list[InputItem]:
    """Items listed by ``path`` (.jsonl, .csv with a ``uri`` column, or a directory).

    Raises ``ManifestError`` naming the file and line of the first malformed entry, or both lines
    of a duplicate id.
    """
    base = media_base(path) if path.exists() else path.parent
    if path.is_dir():
        listed = _folder(path)
    elif not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    elif path.suffix == ".csv":
        with path.open(newline="") as f:
            rows = list(enumerate(csv.DictReader(f), start=2))  # line 1 is the header
        listed = [(f"{path}:{i}", _item(dict(r), base, f"{path}:{i}")) for i, r in rows]
    else:
        lines = [(f"{path}:{i + 1}", line) for i, line in enumerate(path.read_text().splitlines()) if line.strip()]
        listed = [(w, _item(_json_line(line, w), base, w)) for w, line in lines]
    first: dict[str, str] = {}
    for where, it in listed:
        if it.id in first:
            raise ManifestError(f"duplicate id {it.id!r} at {where} (first at {first[it.id]})")
        first[it.id] = where
    if not listed:
        raise ManifestError(f"{path}: no media listed")
    return [it for _, it in listed]


def _json_line(line: str, where: str) -> dict[str, Any]:
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{where}: not valid JSON ({exc.msg})") from exc
    if not isinstance(rec, dict):
        raise ManifestError(f"{where}: expected a JSON object")
    return rec
