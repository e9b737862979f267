"""The writing half of the bundle format (used by the indexer): stage, seal, publish, collect garbage.

Publishing writes a staging directory, fsyncs it, renames it into place and only then replaces
CURRENT, so a crash at any point leaves the previous version live and intact. A staging directory
holds a lock file naming its build's process while it is written: garbage collection (and so the
next build of the collection) removes the staging of a build that died at once, keeps a running
build's, and falls back to an age rule (``STALE_STAGING_S``) when the owner cannot be checked
(no lock, or a lock written on another host).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import sqlite3
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bundle.layout import (
    CLIP_SIDE_FILE,
    CLIPS_FEATURES,
    CLIPS_OFFSETS,
    CURRENT,
    ITEMS_INSERT,
    ITEMS_SCHEMA,
    MANIFEST,
    REQUIRED_FILES,
    RERANK,
    SCHEMA_VERSION,
    SEGMENTS_INSERT,
    SEGMENTS_SCHEMA,
    STAGING_LOCK,
    STAGING_PREFIX,
    WORK_DIR,
    Item,
)
from bundle.moment_graphs import CLIP_CHUNK, run_clips
from bundle.reader import list_versions, read_current, sha256_file
from xmr.errors import BundleError
from xmr.testhooks import pause_point

STALE_STAGING_S = 6 * 3600


def new_version_id() -> str:
    """Sortable, unique version id: UTC timestamp + random suffix."""
    return datetime.now(UTC).strftime("v%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)


def write_items(path: Path, items: Iterable[Item]) -> None:
    """Create ``items.sqlite`` at ``path`` holding ``items``."""
    db = sqlite3.connect(path)
    try:
        with db:
            db.executescript(ITEMS_SCHEMA)
            db.executemany(
                ITEMS_INSERT,
                [
                    (i.row, i.id, i.modality, i.uri, i.duration, i.title, json.dumps(i.tags), json.dumps(i.metadata))
                    for i in items
                ],
            )
    finally:
        db.close()


def write_segments(path: Path, item_rows: np.ndarray, bounds: np.ndarray) -> None:
    """Add the segments table to ``items.sqlite`` at ``path``: segment i (FAISS id i) belongs to items
    row ``item_rows[i]`` (N,) and spans ``bounds[i]`` (N, 2) = [start, end] seconds."""
    db = sqlite3.connect(path)
    try:
        with db:
            db.executescript(SEGMENTS_SCHEMA)
            starts, ends = bounds[:, 0].tolist(), bounds[:, 1].tolist()
            db.executemany(SEGMENTS_INSERT, zip(range(len(starts)), item_rows.tolist(), starts, ends, strict=True))
    finally:
        db.close()


def write_clips(staging: Path, clips: list[np.ndarray], dim: int) -> None:
    """Write every item's (T_i, E) clip features (float16, concatenated) and their offsets."""
    write_clips_streamed(staging, [len(c) for c in clips], iter(clips), dim)


def write_clips_streamed(staging: Path, lengths: Sequence[int], parts: Iterable[np.ndarray], dim: int) -> None:
    """``write_clips`` from consecutive (t, E) pieces (e.g. one shard's clips each) whose rows are the
    items' clips in order, ``lengths[i]`` rows for item row i: one piece in memory at a time."""
    (staging / CLIPS_FEATURES).parent.mkdir(exist_ok=True)
    offsets = np.concatenate([[0], np.cumsum(np.asarray(lengths, np.int64))]).astype(np.int64)
    np.save(staging / CLIPS_OFFSETS, offsets)
    total = int(offsets[-1])
    if total == 0:  # a zero-length file cannot be memory-mapped
        np.save(staging / CLIPS_FEATURES, np.zeros((0, dim), np.float16))
        return
    out = np.lib.format.open_memmap(staging / CLIPS_FEATURES, mode="w+", dtype=np.float16, shape=(total, dim))
    at = 0
    for part in parts:
        out[at : at + len(part)] = part
        at += len(part)
    out.flush()
    del out
    if at != total:
        raise BundleError(f"{staging}: clip features hold {at} rows, the offsets {total}")


def write_clip_side(staging: Path, clips_graph: Any, chunk: int = CLIP_CHUNK) -> list[str]:
    """Run a moment head's clip graph (an ONNX Runtime session of MOMENT_CLIPS) over every staged clip, as
    the service reads them (float16 -> float32), ``chunk`` clips at a time; write each output as
    CLIP_SIDE_FILE (N_clips, ...) float32 and return their names (the manifest's moment_head "clip_side")."""
    features = np.load(staging / CLIPS_FEATURES, mmap_mode="r")
    total = len(features)
    probe = run_clips(clips_graph, np.zeros((1, features.shape[1]), np.float32))
    if total == 0:  # a zero-length file cannot be memory-mapped (as write_clips_streamed)
        for name, a in probe.items():
            np.save(staging / CLIP_SIDE_FILE.format(name=name), np.zeros((0, *a.shape[1:]), np.float32))
        return list(probe)
    outs = {
        name: np.lib.format.open_memmap(
            staging / CLIP_SIDE_FILE.format(name=name), mode="w+", dtype=np.float32, shape=(total, *a.shape[1:])
        )
        for name, a in probe.items()
    }
    for at in range(0, total, chunk):
        for name, a in run_clips(clips_graph, features[at : at + chunk]).items():
            outs[name][at : at + len(a)] = a
    for out in outs.values():
        out.flush()
    return list(outs)


def rerank_entry(staging: Path, candidates: int, **details: Any) -> dict[str, Any]:
    """The manifest's ``"rerank"`` entry for a staged ``rerank.onnx`` re-scoring ``candidates`` FAISS hits.

    ``details`` (model name, ONNX check error, ...) are recorded beside it for people, not readers.
    """
    if not (staging / RERANK).is_file():
        raise BundleError(f"{staging}: no {RERANK} staged for the rerank entry")
    if candidates < 1:
        raise BundleError(f"{staging}: rerank candidates must be >= 1, got {candidates}")
    return {"candidates": candidates, **details}


def staging_dir(root: Path, collection: str) -> tuple[str, Path]:
    """A fresh ``(version, staging path)``; the staging dir is hidden until published.

    It holds a lock file naming this process (removed when the staging is sealed), so a dead
    build's leftovers can be told from a running build's.
    """
    version = new_version_id()
    path = root / collection / f"{STAGING_PREFIX}{version}"
    path.mkdir(parents=True)
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": _process_start(os.getpid())}
    (path / STAGING_LOCK).write_text(json.dumps(owner))
    return version, path


def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3.. of ``/proc/<pid>/stat`` (state, ppid, ...), or None (no such process, or not Linux)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()  # the command name in (...) may hold spaces


def _process_start(pid: int) -> str | None:
    """The process's start time (clock ticks after boot; stat field 22): a reused pid has another one."""
    stat = _proc_stat(pid)
    return stat[19] if stat else None


def build_alive(staging: Path) -> bool | None:
    """Whether the build that owns ``staging`` still runs: True/False, or None when it cannot be told
    (no readable lock, or one written on another host)."""
    try:
        owner = json.loads((staging / STAGING_LOCK).read_text())
        pid, host, started = int(owner["pid"]), str(owner["host"]), owner.get("started")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    stat = _proc_stat(pid)
    if stat and stat[0] in ("Z", "X"):  # killed, not yet reaped by its parent
        return False
    return started is None or stat is None or stat[19] == started


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
    manifest: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "collection": collection,
        "version": version,
        "created_at": datetime.now(UTC).isoformat(),
        **fields,
    }
    (staging / STAGING_LOCK).unlink(missing_ok=True)  # not part of the bundle
    manifest["files"] = checksums(staging)
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
    _fsync_tree(staging)
    final = root / collection / version
    os.rename(staging, final)
    _fsync_dir(final.parent)
    pause_point("renamed")
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


def remove_abandoned_staging(root: Path, collection: str) -> list[Path]:
    """Delete the staging dirs of builds that died (at once) or that are older than ``STALE_STAGING_S``
    with an owner that cannot be checked; keep running builds'. Returns the deleted paths."""
    doomed = []
    for staging in sorted((root / collection).glob(f"{STAGING_PREFIX}*")):
        alive = build_alive(staging)
        if alive is False or (alive is None and _age_s(staging) > STALE_STAGING_S):
            shutil.rmtree(staging, ignore_errors=True)
            doomed.append(staging)
    return doomed


def _age_s(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:  # removed meanwhile (its build published or cleaned up)
        return 0.0


def collect_garbage(root: Path, collection: str, keep: int = 3) -> list[str]:
    """Delete all but the newest ``keep`` versions (never the live one), abandoned staging dirs and
    resumable-build work older than ``STALE_STAGING_S``. Returns the deleted versions."""
    live = read_current(root, collection)
    versions = list_versions(root, collection)
    doomed = [v for v in versions[: max(len(versions) - keep, 0)] if v != live]
    for v in doomed:
        shutil.rmtree(root / collection / v)
    remove_abandoned_staging(root, collection)
    for work in (root / collection).glob(f"{WORK_DIR}/*"):  # kept a while so a crashed build can resume
        if _age_s(work) > STALE_STAGING_S:
            shutil.rmtree(work, ignore_errors=True)
    return doomed
