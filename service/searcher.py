"""Vector search over one bundle: FAISS index + the items table, with a per-modality ID selector."""

from __future__ import annotations

import time
from pathlib import Path

import faiss
import numpy as np

from bundle import INDEX, Item, ItemsDB

MODALITIES = ("video", "image")
# Flat codes (the vectors of Flat, IVF-Flat, ... indexes) are memory-mapped from the bundle file instead of
# copied to the heap, so `xmr serve --workers N` processes share one copy in the page cache; search
# results are identical (tests/service/test_speed_paths.py). Older FAISS without the flag reads normally.
READ_FLAGS = getattr(faiss, "IO_FLAG_MMAP_IFC", 0)


class Searcher:
    def __init__(self, bundle_dir: Path) -> None:
        self.index = faiss.read_index(str(bundle_dir / INDEX), READ_FLAGS)
        self.db = ItemsDB(bundle_dir)
        self.rows_by_modality = {m: self.db.rows_by_modality(m) for m in MODALITIES}
        self._params = {
            m: faiss.SearchParameters(sel=faiss.IDSelectorBatch(rows))  # type: ignore[call-arg]
            for m, rows in self.rows_by_modality.items()
        }
        self.latency_ms = self._probe()

    def _probe(self, runs: int = 5) -> float:
        """Milliseconds of one top-10 search + join over the whole index, the least of ``runs`` (as the
        encoder's probe); decides whether requests hop to a thread."""
        query = np.full((1, self.index.d), self.index.d**-0.5, np.float32)  # any unit vector costs the same
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            self.items([row for row, _ in self.search(query, 10, "all")[0]])
            times.append((time.perf_counter() - t0) * 1000)
        return min(times)

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
        return self.db.by_rows(rows)

    def item_by_id(self, item_id: str) -> Item | None:
        return self.db.by_id(item_id)

    def close(self) -> None:
        self.db.close()
