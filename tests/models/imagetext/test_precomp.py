"""The precomp reader: round trip, pooled features, and refusals that name the file and the problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.imagetext.precomp import PrecompError, PrecompSplit, paths, read_split, write_split
from xmr.errors import XmrError


def _write(root: Path, n: int = 3, k: int = 4, d: int = 6) -> PrecompSplit:
    split = PrecompSplit(
        "test",
        np.random.default_rng(0).random((n, k, d), dtype=np.float32),
        [f"caption {i}" for i in range(5 * n)],
        [f"im{i}" for i in range(n)],
    )
    write_split(root, split)
    return split


def test_round_trip_and_pooled_features(tmp_path: Path) -> None:
    want = _write(tmp_path)
    got = read_split(tmp_path, "test")
    np.testing.assert_array_equal(got.images, want.images)
    assert got.captions == want.captions and got.ids == want.ids and got.image_of_caption()[7] == 1
    np.save(paths(tmp_path, "dev")["ims.npy"], np.ones((2, 8), np.float32))  # (N, D) pooled, no ids file
    paths(tmp_path, "dev")["caps.txt"].write_text("x\n" * 10)
    dev = read_split(tmp_path, "dev")
    assert dev.images.shape == (2, 1, 8) and dev.ids == ["0", "1"]


def test_caption_count_must_be_five_per_image(tmp_path: Path) -> None:
    _write(tmp_path)
    caps = paths(tmp_path, "test")["caps.txt"]
    caps.write_text("\n".join(caps.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(PrecompError, match=r"test_caps.txt: 14 captions for 3 images .* expected 5 per image \(15\)"):
        read_split(tmp_path, "test")


def test_wrong_rank_and_dtype_are_refused(tmp_path: Path) -> None:
    _write(tmp_path)
    ims = paths(tmp_path, "test")["ims.npy"]
    np.save(ims, np.zeros((3, 2, 2, 2), np.float32))
    with pytest.raises(PrecompError, match=r"test_ims.npy: rank 4 array .* expected \(N, K, D\) or \(N, D\)"):
        read_split(tmp_path, "test")
    np.save(ims, np.zeros((3, 4), np.int64))
    with pytest.raises(PrecompError, match="dtype int64; expected float"):
        read_split(tmp_path, "test")
    ims.write_bytes(b"not numpy")
    with pytest.raises(PrecompError, match="not a readable .npy"):
        read_split(tmp_path, "test")


def test_missing_split_names_the_file_and_the_splits_present(tmp_path: Path) -> None:
    _write(tmp_path)
    with pytest.raises(XmrError, match=r"testall_ims.npy: missing .*splits present in .*\['test'\]"):
        read_split(tmp_path, "testall")
    paths(tmp_path, "test")["caps.txt"].unlink()
    with pytest.raises(PrecompError, match="test_caps.txt: missing"):
        read_split(tmp_path, "test")


def test_ids_must_match_the_images(tmp_path: Path) -> None:
    _write(tmp_path)
    paths(tmp_path, "test")["ids.txt"].write_text("a\nb\n")
    with pytest.raises(PrecompError, match="test_ids.txt: 2 ids for 3 images"):
        read_split(tmp_path, "test")
