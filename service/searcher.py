"""Vector search over one bundle: FAISS index + the items table, with a per-modality ID selector."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from bundle import INDEX, Item, ItemsDB

MODALITIES = ("video", "image")


class Searcher:
    def __init__(self, bundle_dir: Path) -> None:
        self.index = faiss.read_index(str(bundle_dir / INDEX))
        self.db = ItemsDB(bundle_dir)
        self.rows_by_modality = {m: self.db.rows_by_modality(m) for m in MODALITIES}
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
        return self.db.by_rows(rows)

    def item_by_id(self, item_id: str) -> Item | None:
        return self.db.by_id(item_id)

    def close(self) -> None:
        self.db.close()
