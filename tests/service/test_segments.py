"""Search over segment vectors: each item once, ranked by its best segment, against a brute-force oracle."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

import bundle
from service.searcher import Searcher


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray, list[str]]:
    """40 items (videos of 1-12 segments, images of 1) with seeded unit vectors, written as a bundle's
    index + items.sqlite. Returns (dir, vectors (N_seg, E), segment -> item (N_seg,), item modalities)."""
    rng = np.random.default_rng(7)
    path = tmp_path_factory.mktemp("seg")
    modality = ["image" if i % 4 == 0 else "video" for i in range(40)]
    n_seg = [1 if m == "image" else int(rng.integers(1, 13)) for m in modality]
    item_of = np.repeat(np.arange(40), n_seg)
    vectors = rng.normal(size=(len(item_of), 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = faiss.IndexFlatIP(16)
    index.add(vectors)
    faiss.write_index(index, str(path / bundle.INDEX))
    items = [
        bundle.Item(i, f"it{i}", m, f"{i}.mp4", 10.0 * n, "", [], {})
        for i, (m, n) in enumerate(zip(modality, n_seg, strict=True))
    ]
    bundle.write_items(path / bundle.ITEMS, items)
    starts = np.concatenate([np.arange(n) * 16.0 for n in n_seg])
    bounds = np.stack([starts, starts + 32.0], axis=1)
    bundle.write_segments(path / bundle.ITEMS, item_of, bounds)
    return path, vectors, item_of, modality


def oracle(scores: np.ndarray, item_of: np.ndarray, allowed: set[int], k: int) -> list[tuple[int, int]]:
    """Exact: every item's best segment by a full scan, items sorted by that score; (item, segment) pairs."""
    best: dict[int, int] = {}
    for seg in np.argsort(-scores, kind="stable"):
        best.setdefault(int(item_of[seg]), int(seg))
    return [(i, s) for i, s in best.items() if i in allowed][:k]


@pytest.mark.parametrize("modality", ["all", "video", "image"])
@pytest.mark.parametrize("k", [1, 3, 10, 25, 40, 100])
def test_best_segment_per_item_equals_brute_force(synthetic: tuple, modality: str, k: int) -> None:
    path, vectors, item_of, modalities = synthetic
    searcher = Searcher(path)
    allowed = {i for i, m in enumerate(modalities) if modality in ("all", m)}
    queries = np.random.default_rng(k).normal(size=(8, 16)).astype(np.float32)
    for q, hits in zip(queries, searcher.search_segments(queries, k, modality), strict=True):
        want = oracle(vectors @ q, item_of, allowed, k)
        assert [(h.row, h.segment) for h in hits] == want
        np.testing.assert_allclose([h.score for h in hits], [vectors[s] @ q for _, s in want], atol=1e-6)
    assert len(searcher.search(queries[:1], k, modality)[0]) == min(k, len(allowed))  # k unique items when they exist
    searcher.close()


def test_segment_is_named_only_for_items_of_several(synthetic: tuple) -> None:
    path, _, item_of, _ = synthetic
    searcher = Searcher(path)
    counts = np.bincount(item_of)
    for seg in range(len(item_of)):
        got = searcher.segment(seg)
        first = int(np.flatnonzero(item_of == item_of[seg])[0])
        assert got == (None if counts[item_of[seg]] == 1 else (16.0 * (seg - first), 16.0 * (seg - first) + 32.0))
    searcher.close()
