"""Vector search over one bundle: FAISS index of segment vectors + the items and segments tables.

A long video has several segment vectors (overlapping windows); search ranks items by their best
segment and returns each item once. FAISS is asked for more segments than ``k`` and the answer is
deduplicated by item; when that leaves fewer than ``k`` items and more segments exist, the request
is repeated with twice as many. The first time an item appears is its best segment, and once ``k``
items have appeared no unseen item can score higher, so the result is exact.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import NamedTuple

import faiss
import numpy as np

from bundle import INDEX, Item, ItemsDB

MODALITIES = ("video", "image")
# Flat codes (the vectors of Flat, IVF-Flat, ... indexes) are memory-mapped from the bundle file instead of
# copied to the heap, so `xmr serve --workers N` processes share one copy in the page cache; search
# results are identical (tests/service/test_speed_paths.py). Older FAISS without the flag reads normally.
READ_FLAGS = getattr(faiss, "IO_FLAG_MMAP_IFC", 0)
OVERFETCH = 2  # segments asked per wanted item on the first try


class Ranked(NamedTuple):
    """One hit: items ``row``, cosine ``score`` of its best segment, and that segment's FAISS id."""

    row: int
    score: float
    segment: int


class Searcher:
    def __init__(self, bundle_dir: Path) -> None:
        self.index = faiss.read_index(str(bundle_dir / INDEX), READ_FLAGS)
        self.db = ItemsDB(bundle_dir)
        self.segment_item, self.segment_bounds = self.db.segments()  # (N,) items rows, (N, 2) seconds
        self.segments_per_item = np.bincount(self.segment_item)  # (N_items,)
        self.rows_by_modality = {m: self.db.rows_by_modality(m) for m in MODALITIES}
        self._selected = {
            m: np.flatnonzero(np.isin(self.segment_item, rows)) for m, rows in self.rows_by_modality.items()
        }
        self._params = {
            m: faiss.SearchParameters(sel=faiss.IDSelectorBatch(ids))  # type: ignore[call-arg]
            for m, ids in self._selected.items()
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
        """Top-``k`` ``(row, score)`` items per query vector (B, E); ``modality`` is video, image or all."""
        return [[(r.row, r.score) for r in hits] for hits in self.search_segments(vectors, k, modality)]

    def search_segments(self, vectors: np.ndarray, k: int, modality: str) -> list[list[Ranked]]:
        """Top-``k`` distinct items per query vector (B, E), each with its best segment."""
        return [self._search_one(v[None], k, modality) for v in vectors]

    def _search_one(self, vector: np.ndarray, k: int, modality: str) -> list[Ranked]:
        available = self.index.ntotal if modality == "all" else len(self._selected[modality])
        params = None if modality == "all" else self._params[modality]
        fetch = min(k * OVERFETCH, available)
        while True:
            if fetch == 0:
                return []
            scores, ids = self.index.search(vector, fetch, params=params)
            hits = self._dedupe(ids[0], scores[0], k)
            if len(hits) == k or fetch >= available:
                return hits
            fetch = min(fetch * 2, available)

    def _dedupe(self, ids: np.ndarray, scores: np.ndarray, k: int) -> list[Ranked]:
        hits: list[Ranked] = []
        seen: set[int] = set()
        for seg, score in zip(ids.tolist(), scores.tolist(), strict=True):
            if seg < 0:
                break
            row = int(self.segment_item[seg])
            if row not in seen:
                seen.add(row)
                hits.append(Ranked(row, float(score), seg))
                if len(hits) == k:
                    break
        return hits

    def segment(self, seg: int) -> tuple[float, float] | None:
        """``(start, end)`` seconds of segment ``seg`` when its item has several, else None."""
        if self.segments_per_item[self.segment_item[seg]] < 2:
            return None
        start, end = self.segment_bounds[seg]
        return float(start), float(end)

    def items(self, rows: list[int]) -> dict[int, Item]:
        return self.db.by_rows(rows)

    def item_by_id(self, item_id: str) -> Item | None:
        return self.db.by_id(item_id)

    def close(self) -> None:
        self.db.close()
