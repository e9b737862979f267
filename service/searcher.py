"""Vector search over one bundle: FAISS index + items.sqlite, with a per-modality ID selector."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import faiss
import numpy as np

from indexer.bundle import Item, row_to_item

MODALITIES = ("video", "image")


class Searcher:
    def __init__(self, bundle_dir: Path) -> None:
        self.index = faiss.read_index(str(bundle_dir / "index.faiss"))
        uri = f"file:{bundle_dir / 'items.sqlite'}?mode=ro&immutable=1"
        self.db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        self._lock = threading.Lock()
        self.rows_by_modality = {
            m: np.array([r for (r,) in self.db.execute("SELECT row FROM items WHERE modality = ?", (m,))], np.int64)
            for m in MODALITIES
        }
        self._params = {
            m: faiss.SearchParameters(sel=faiss.IDSelectorBatch(rows))  # type: ignore[call-arg]
            for m, rows in self.rows_by_modality.items()
        }

    def search(self, vectors: np.ndarray, k: int, modality: str) -> list[list[tuple[int, float]]]:
        """Top-``k`` ``(row, score)`` per query vector (B, E); ``modality`` is video, image or all."""
        k = min(k, self.index.ntotal)
        if k == 0:
            return [[] for _ in vectors]
        params = None if modality == "all" else self._params[modality]
        scores, rows = self.index.search(vectors, k, params=params)
        return [
            [(int(r), float(s)) for r, s in zip(rr, ss, strict=True) if r >= 0]
            for rr, ss in zip(rows, scores, strict=True)
        ]

    def items(self, rows: list[int]) -> dict[int, Item]:
        if not rows:
            return {}
        marks = ",".join("?" * len(rows))
        with self._lock:
            found = self.db.execute(f"SELECT * FROM items WHERE row IN ({marks})", rows).fetchall()
        return {r[0]: row_to_item(r) for r in found}

    def item_by_id(self, item_id: str) -> Item | None:
        with self._lock:
            row = self.db.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
        return row_to_item(row) if row else None

    def close(self) -> None:
        self.db.close()
