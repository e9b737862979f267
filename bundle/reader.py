"""The reading half of the bundle format (used by the service): find, verify and open a version."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from bundle.layout import (
    CLIP_SIDE_FILE,
    CLIPS_FEATURES,
    CLIPS_OFFSETS,
    CURRENT,
    ITEM_BY_ID,
    ITEMS,
    ITEMS_BY_ROWS,
    MANIFEST,
    MEDIA_ROOT,
    MOMENT_CLIPS,
    MOMENT_HEAD,
    MOMENT_HEAD_FIELDS,
    MOMENT_QUERY,
    OLDEST_READABLE_SCHEMA,
    REQUIRED_FILES,
    ROWS_BY_MODALITY,
    SCHEMA_VERSION,
    SEGMENTS_ALL,
    Item,
)
from xmr.errors import BundleError


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_current(root: Path, collection: str) -> str | None:
    """The version CURRENT names, or None when the collection has no CURRENT (or it is empty)."""
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
    """A published version's manifest.json, schema-checked; raises BundleError naming the problem."""
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise BundleError(f"{path}: no {MANIFEST}")
    try:
        manifest: dict[str, Any] = json.loads(mpath.read_text())
    except json.JSONDecodeError as exc:
        raise BundleError(f"{mpath}: not valid JSON ({exc})") from exc
    got = manifest.get("schema_version")
    if not isinstance(got, int):
        raise BundleError(f"{mpath}: schema_version {got!r} is not a number")
    if got > SCHEMA_VERSION:
        raise BundleError(
            f"{mpath}: bundle schema_version {got} is newer than this xmr reads ({SCHEMA_VERSION}); upgrade xmr"
        )
    if got < OLDEST_READABLE_SCHEMA:
        raise BundleError(
            f"{mpath}: bundle schema_version {got} is older than this xmr reads ({OLDEST_READABLE_SCHEMA}); "
            "rebuild it with `xmr index build`"
        )
    if manifest.get("version") != path.name:
        named = manifest.get("version")
        raise BundleError(f"{mpath}: manifest version {named!r} differs from its folder {path.name!r}")
    return manifest


def verify(path: Path) -> dict[str, Any]:
    """Read and check a bundle's manifest and every file's sha256; return the manifest.

    Raises ``BundleError`` naming the first problem (missing file, checksum mismatch, schema).
    """
    manifest = read_manifest(path)
    files = manifest.get("files", {})
    for name in REQUIRED_FILES:
        if name not in files:
            raise BundleError(f"{path}: manifest does not list required file {name}")
    for name, want in files.items():
        f = path / name
        if not f.is_file():
            raise BundleError(f"{path}: file {name} listed in the manifest is missing")
        got = sha256_file(f)
        if got != want:
            raise BundleError(f"{path}: checksum mismatch for {name} (manifest {want[:12]}..., file {got[:12]}...)")
    moment_head_entry(path, manifest)
    return manifest


def moment_head_entry(path: Path, manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest's "moment_head" entry, or None for a bundle without a moment head (it still serves search).

    The head is optional but must be whole: an entry without its listed graph (or the reverse), a missing
    field, or a clip rate other than the clips' is refused with a ``BundleError`` naming it.
    """
    entry, listed = manifest.get("moment_head"), MOMENT_HEAD in manifest.get("files", {})
    if entry is None and not listed:
        return None
    if not isinstance(entry, dict) or not listed:
        raise BundleError(f"{path}: {MOMENT_HEAD} and the manifest's moment_head entry must come together")
    if missing := [f for f in MOMENT_HEAD_FIELDS if f not in entry]:
        raise BundleError(f"{path}: manifest moment_head lacks {missing}")
    query = entry.get("query_graph")
    if query is not None and (query != MOMENT_QUERY or MOMENT_QUERY not in manifest.get("files", {})):
        raise BundleError(f"{path}: manifest moment_head names query graph {query!r}, which the bundle does not list")
    side = entry.get("clip_side", [])
    if (entry.get("clip_graph") is None) != (not side) or not isinstance(side, list):
        graph = entry.get("clip_graph")
        raise BundleError(f"{path}: manifest moment_head has clip_graph {graph!r} with clip_side {side!r}")
    if side:
        files = manifest.get("files", {})
        if entry["clip_graph"] != MOMENT_CLIPS or MOMENT_CLIPS not in files:
            raise BundleError(f"{path}: manifest moment_head names clip graph {entry['clip_graph']!r}, not listed")
        if unlisted := [n for n in side if CLIP_SIDE_FILE.format(name=n) not in files]:
            raise BundleError(f"{path}: the moment head's clip side {unlisted} is not in the bundle")
    if int(entry["span_clips"]) < 1 or float(entry["clip_rate"]) != float(manifest.get("clip_rate", 0)):
        raise BundleError(
            f"{path}: moment_head span_clips {entry['span_clips']} / clip_rate {entry['clip_rate']} "
            f"do not fit the clips (clip_rate {manifest.get('clip_rate')})"
        )
    return entry


def row_to_item(row: tuple[Any, ...]) -> Item:
    return Item(row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]), json.loads(row[7]))


class ItemsDB:
    """Read-only ``items.sqlite`` of one version, shared by request threads (one connection, a lock).

    ``by_rows`` keeps the last ``cache_items`` items it decoded (LRU): a version never changes, and a
    search's ten hits otherwise cost a SQL query plus two JSON decodes each (~70 us of a ~230 us join +
    search on the demo bundle).
    """

    def __init__(self, bundle_dir: Path, cache_items: int = 65536) -> None:
        uri = f"file:{bundle_dir / ITEMS}?mode=ro&immutable=1"
        self.db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        self._lock = threading.Lock()
        self.cache_items = cache_items
        self._cache: OrderedDict[int, Item] = OrderedDict()

    def rows_by_modality(self, modality: str) -> np.ndarray:
        """(N,) int64 rows (= FAISS ids) of every item of ``modality``."""
        with self._lock:
            found = self.db.execute(ROWS_BY_MODALITY, (modality,)).fetchall()
        return np.array([r for (r,) in found], np.int64)

    def by_rows(self, rows: list[int]) -> dict[int, Item]:
        """The items at ``rows`` that exist, by row (rows that name no item are left out)."""
        out: dict[int, Item] = {}
        with self._lock:
            cache = self._cache
            for r in rows:
                if (hit := cache.get(r)) is not None:
                    cache.move_to_end(r)
                    out[r] = hit
            missing = [r for r in rows if r not in out]
            if not missing:
                return out
            found = self.db.execute(ITEMS_BY_ROWS.format(marks=",".join("?" * len(missing))), missing).fetchall()
            for row in found:  # a new key goes to the end of the LRU order
                out[row[0]] = cache[row[0]] = row_to_item(row)
            while len(cache) > self.cache_items:
                cache.popitem(last=False)
        return out

    def segments(self) -> tuple[np.ndarray, np.ndarray]:
        """Every segment: ``item`` (N,) int64 items row of segment (= FAISS id) i, ``bounds`` (N, 2) seconds."""
        with self._lock:
            found = self.db.execute(SEGMENTS_ALL).fetchall()
        if [r[0] for r in found] != list(range(len(found))):
            raise BundleError(f"{ITEMS}: segment rows are not 0..{len(found) - 1}")
        item = np.array([r[1] for r in found], np.int64)
        return item, np.array([r[2:] for r in found], np.float64).reshape(-1, 2)

    def by_id(self, item_id: str) -> Item | None:
        with self._lock:
            row = self.db.execute(ITEM_BY_ID, (item_id,)).fetchone()
        return row_to_item(row) if row else None

    def close(self) -> None:
        self.db.close()


def media_path(manifest: dict[str, Any], item: Item, media_root: Path | None = None) -> Path:
    """Where ``item``'s file is on this server: its uri resolved against the bundle's media root, or
    against ``media_root`` when given (the same tree mounted elsewhere). An absolute uri under the
    bundle's media root moves with it; any other absolute uri is used as is."""
    recorded = Path(str(manifest.get(MEDIA_ROOT, ".")))
    uri = Path(item.uri)
    if uri.is_absolute():
        if media_root is None or not uri.is_relative_to(recorded):
            return uri
        uri = uri.relative_to(recorded)
    return (media_root or recorded) / uri


class ClipStore:
    """Per-clip features of every video, memory-mapped: ``clips(row)`` is (T, E) float32 for item ``row``."""

    def __init__(self, bundle_dir: Path, side: list[str] | tuple[str, ...] = ()) -> None:
        self.features = np.load(bundle_dir / CLIPS_FEATURES, mmap_mode="r")  # (N_clips, E) float16
        self.offsets = np.load(bundle_dir / CLIPS_OFFSETS)  # (N_items + 1,) int64
        # a moment head's per-clip tensors (CLIP_SIDE_FILE), (N_clips, ...) float32, rows aligned with features
        self.side = {n: np.load(bundle_dir / CLIP_SIDE_FILE.format(name=n), mmap_mode="r") for n in side}
        for name, arr in self.side.items():
            if len(arr) != len(self.features):
                n = len(self.features)
                raise BundleError(f"{bundle_dir}: clip side {name!r} has {len(arr)} rows for {n} clips")

    def clips(self, row: int) -> np.ndarray:
        """(T, E) float32 features of item ``row``'s clips; (0, E) for images."""
        a, b = int(self.offsets[row]), int(self.offsets[row + 1])
        return np.asarray(self.features[a:b], dtype=np.float32)

    def windows(self, spans: list[tuple[int, int, int]]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Clips ``[a, b)`` of item ``row`` for each ``(row, a, b)`` as one batch: features (B, T, E) float32
        zero-padded, mask (B, T) int64 and the clip side's rows (B, T, ...) padded alike. Only those rows
        are read: one fancy-index gather per memory map for the whole batch (a copy per window cost ~15 us)."""
        starts = np.array([int(self.offsets[row]) + a for row, a, _ in spans], np.int64)  # (B,) first rows
        lengths = np.array([b - a for _, a, b in spans], np.int64)
        steps = np.arange(int(lengths.max(initial=0)))
        valid = steps[None, :] < lengths[:, None]  # (B, T)
        at = (starts[:, None] + steps[None, :])[valid]  # the valid clips' rows, window by window
        clips = np.zeros((*valid.shape, self.features.shape[1]), np.float32)
        clips[valid] = self.features[at]
        side = {}
        for name, arr in self.side.items():
            side[name] = np.zeros((*valid.shape, *arr.shape[1:]), np.float32)
            side[name][valid] = arr[at]
        return clips, valid.astype(np.int64), side

    def count(self, row: int) -> int:
        return int(self.offsets[row + 1] - self.offsets[row])

    def padded(self, rows: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Clips of ``rows`` as one batch: features (K, T, E) float32 zero-padded, mask (K, T) int64 (``windows``
        over each row's whole video)."""
        clips, mask, _ = self.windows([(row, 0, self.count(row)) for row in rows])
        return clips, mask


def rerank_candidates(manifest: dict[str, Any]) -> int:
    """How many FAISS hits the bundle's ``rerank.onnx`` re-scores; 0 when the bundle has no re-ranker."""
    spec = manifest.get("rerank")
    if not isinstance(spec, dict):
        return 0
    n = spec.get("candidates", 0)
    if not isinstance(n, int) or n < 0:
        raise BundleError(f"manifest rerank.candidates {n!r} is not a non-negative integer")
    return n
