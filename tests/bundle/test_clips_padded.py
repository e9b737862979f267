"""ClipStore.padded (one gather for the re-ranker's candidates) against the per-row oracle."""

from pathlib import Path

import numpy as np

import bundle


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
