"""ClipStore.padded (one gather for the re-ranker's candidates) and ClipStore.windows (the moment head's
windows, with its clip side) against per-row oracles."""

from pathlib import Path

import numpy as np
import pytest

import bundle
from xmr.errors import BundleError


def test_padded_equals_per_row_clips(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal((n, 4)).astype(np.float32) for n in (3, 0, 5, 1, 2)]  # row 1: an image
    bundle.write_clips(tmp_path, clips, 4)
    store = bundle.ClipStore(tmp_path)
    rows = [4, 0, 1, 2, 0]
    out, mask = store.padded(rows)
    assert out.shape == (5, 5, 4) and mask.sum(1).tolist() == [2, 3, 0, 5, 3]
    for k, r in enumerate(rows):
        n = store.count(r)
        np.testing.assert_array_equal(out[k, :n], store.clips(r))
        assert not out[k, n:].any()
    assert store.padded([])[0].shape == (0, 0, 4)


class Halves:
    """A clip graph stand-in (ONNX Runtime's session interface): per clip, its sum and its first two values."""

    def get_outputs(self) -> list:
        from types import SimpleNamespace

        return [SimpleNamespace(name="total"), SimpleNamespace(name="head")]

    def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        clips = feeds["clips"]
        assert clips.dtype == np.float32 and len(clips) <= 4  # fed as float32, in chunks
        return [clips.sum(1), clips[:, :2].copy()]


def test_clip_side_and_windows_equal_per_clip_oracles(tmp_path: Path) -> None:
    """write_clip_side runs the clip graph over every clip as the service reads them (float16 -> float32), in
    chunks; ClipStore.windows gathers any windows of clips and of the clip side as one padded batch."""
    rng = np.random.default_rng(1)
    clips = [rng.standard_normal((n, 4)).astype(np.float32) for n in (7, 0, 3, 9)]
    bundle.write_clips(tmp_path, clips, 4)
    assert bundle.write_clip_side(tmp_path, Halves(), chunk=4) == ["total", "head"]
    store = bundle.ClipStore(tmp_path, ["total", "head"])
    stored = np.concatenate(clips).astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(store.side["total"], stored.sum(1))
    np.testing.assert_array_equal(store.side["head"], stored[:, :2])
    spans = [(3, 2, 9), (0, 0, 7), (2, 1, 2), (3, 0, 4)]
    got, mask, side = store.windows(spans)
    assert got.shape == (4, 7, 4) and mask.sum(1).tolist() == [7, 7, 1, 4]
    for j, (row, a, b) in enumerate(spans):
        rows = slice(int(store.offsets[row]) + a, int(store.offsets[row]) + b)
        np.testing.assert_array_equal(got[j, : b - a], store.clips(row)[a:b])
        np.testing.assert_array_equal(side["total"][j, : b - a], store.side["total"][rows])
        np.testing.assert_array_equal(side["head"][j, : b - a], store.side["head"][rows])
        assert not got[j, b - a :].any() and not side["head"][j, b - a :].any()


def test_a_clip_side_that_does_not_fit_the_clips_is_refused(tmp_path: Path) -> None:
    bundle.write_clips(tmp_path, [np.ones((3, 4), np.float32)], 4)
    np.save(tmp_path / bundle.CLIP_SIDE_FILE.format(name="total"), np.ones(2, np.float32))
    with pytest.raises(BundleError, match="clip side 'total' has 2 rows for 3 clips"):
        bundle.ClipStore(tmp_path, ["total"])
