"""The index bundle: the one contract between the indexer and the service (torch-free).

Layout (DESIGN.md)::

    <root>/<collection>/<version>/manifest.json, index.faiss, items.sqlite, clips/, text_encoder.onnx, tokenizer.json
    <root>/<collection>/CURRENT      names the live version; replaced atomically

Publishing writes a staging directory, fsyncs it, renames it into place and only then replaces
CURRENT, so a crash at any point leaves the previous version live and intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from xmr.errors import BundleError

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
CURRENT = "CURRENT"
STALE_STAGING_S = 6 * 3600
REQUIRED_FILES = ("index.faiss", "items.sqlite", "text_encoder.onnx", "tokenizer.json")
ITEMS_SCHEMA = """
CREATE TABLE items (
    row INTEGER PRIMARY KEY,        -- the FAISS id of the item's vector
    id TEXT NOT NULL UNIQUE,
    modality TEXT NOT NULL,
    uri TEXT NOT NULL,
    duration REAL NOT NULL,         -- seconds; 0 for images
    title TEXT NOT NULL,
    tags TEXT NOT NULL,             -- json list
    metadata TEXT NOT NULL          -- json object
);
CREATE INDEX items_modality ON items (modality);
"""


@dataclass(frozen=True)
class Item:
    """One searchable item as stored in ``items.sqlite``."""

    row: int
    id: str
    modality: str
    uri: str
    duration: float
    title: str
    tags: list[str]
    metadata: dict[str, Any]


def new_version_id() -> str:
    """Sortable, unique version id: UTC timestamp + random suffix."""
    return datetime.now(UTC).strftime("v%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_items(path: Path, items: Iterable[Item]) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(ITEMS_SCHEMA)
        db.executemany(
            "INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (i.row, i.id, i.modality, i.uri, i.duration, i.title, json.dumps(i.tags), json.dumps(i.metadata))
                for i in items
            ],
        )
    # sqlite3's context manager commits but does not close
    sqlite3.connect(path).close()


def row_to_item(row: tuple[Any, ...]) -> Item:
    return Item(row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]), json.loads(row[7]))


def staging_dir(root: Path, collection: str) -> tuple[str, Path]:
    """A fresh ``(version, staging path)``; the staging dir is hidden until published."""
    version = new_version_id()
    path = root / collection / f".staging-{version}"
    path.mkdir(parents=True)
    return version, path


def _fsync_tree(path: Path) -> None:
    for p in sorted(path.rglob("*")):
        if p.is_file():
            with p.open("rb") as f:
                os.fsync(f.fileno())
    _fsync_dir(path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def checksums(path: Path) -> dict[str, str]:
    """sha256 of every file under ``path`` except the manifest, keyed by relative posix path."""
    return {
        p.relative_to(path).as_posix(): sha256_file(p)
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def publish(root: Path, collection: str, version: str, staging: Path, fields: dict[str, Any]) -> Path:
    """Seal ``staging`` (manifest with checksums), move it into place, then flip CURRENT.

    ``fields`` are written into manifest.json next to the schema version, ids and checksums.
    Returns the published version directory.
    """
    missing = [f for f in REQUIRED_FILES if not (staging / f).is_file()]
    if missing:
        raise BundleError(f"{staging}: cannot publish, missing {missing}")
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "collection": collection,
        "version": version,
        "created_at": datetime.now(UTC).isoformat(),
        **fields,
        "files": checksums(staging),
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
    _fsync_tree(staging)
    final = root / collection / version
    os.rename(staging, final)
    _fsync_dir(final.parent)
    set_current(root, collection, version)
    return final


def set_current(root: Path, collection: str, version: str) -> None:
    """Atomically point CURRENT at ``version`` (write temp, fsync, os.replace)."""
    coll = root / collection
    if not (coll / version / MANIFEST).is_file():
        raise BundleError(f"{coll / version}: no such published version")
    tmp = coll / f".{CURRENT}.{secrets.token_hex(4)}"
    with tmp.open("w") as f:
        f.write(version + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, coll / CURRENT)
    _fsync_dir(coll)


def read_current(root: Path, collection: str) -> str | None:
    path = root / collection / CURRENT
    if not path.is_file():
        return None
    return path.read_text().strip() or None


def list_collections(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / CURRENT).is_file())


def list_versions(root: Path, collection: str) -> list[str]:
    coll = root / collection
    if not coll.is_dir():
        return []
    return sorted(p.name for p in coll.iterdir() if p.is_dir() and (p / MANIFEST).is_file())


def read_manifest(path: Path) -> dict[str, Any]:
    """A published version's manifest.json, schema-checked; raises BundleError."""
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise BundleError(f"{path}: no {MANIFEST}")
    try:
        manifest: dict[str, Any] = json.loads(mpath.read_text())
    except json.JSONDecodeError as exc:
        raise BundleError(f"{mpath}: not valid JSON ({exc})") from exc
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise BundleError(f"{mpath}: schema_version {manifest.get('schema_version')!r}, expected {SCHEMA_VERSION}")
    return manifest


def verify(path: Path) -> dict[str, Any]:
    """Read and check a bundle's manifest and every file's sha256; return the manifest.

    Raises ``BundleError`` naming the first problem (missing file, checksum mismatch, schema).
    """
    manifest = read_manifest(path)
    for name, want in manifest.get("files", {}).items():
        f = path / name
        if not f.is_file():
            raise BundleError(f"{path}: file {name} listed in the manifest is missing")
        got = sha256_file(f)
        if got != want:
            raise BundleError(f"{path}: checksum mismatch for {name} (manifest {want[:12]}..., file {got[:12]}...)")
    for name in REQUIRED_FILES:
        if name not in manifest.get("files", {}):
            raise BundleError(f"{path}: manifest does not list required file {name}")
    return manifest


def collect_garbage(root: Path, collection: str, keep: int = 3) -> list[str]:
    """Delete all but the newest ``keep`` versions (never the live one) and stale staging/work dirs."""
    live = read_current(root, collection)
    versions = list_versions(root, collection)
    doomed = [v for v in versions[: max(len(versions) - keep, 0)] if v != live]
    for v in doomed:
        shutil.rmtree(root / collection / v)
    for stale in [*(root / collection).glob(".staging-*"), *(root / collection).glob(".work/*")]:
        if time.time() - stale.stat().st_mtime > STALE_STAGING_S:  # a crashed build, not a running one
            shutil.rmtree(stale, ignore_errors=True)
    return doomed
