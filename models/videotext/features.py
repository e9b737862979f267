"""Per-video frame/region feature files: an alternative to decoding mp4.

``<dir>/<video_id>.npy`` (or ``.npz`` with a ``features`` array) of shape (frames, dim) or
(frames, regions, dim); frame features are read as one region per frame. All videos of a bank must
share ``regions`` and ``dim``; a file that does not is refused naming the file and its shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.videotext.formats import DatasetError


def feature_path(root: Path, video_id: str) -> Path:
    """The ``.npy`` or ``.npz`` file of ``video_id`` under ``root``; DatasetError if neither exists."""
    for ext in (".npy", ".npz"):
        if (p := root / f"{video_id}{ext}").is_file():
            return p
    raise DatasetError(f"{root}: no feature file for video id {video_id!r} (.npy or .npz)")


def read_features(path: Path, regions: int, dim: int) -> np.ndarray:
    """(T, regions, dim) float32 of one video; (T, dim) files are frame features (``regions`` must be 1)."""
    try:
        if path.suffix == ".npz":
            with np.load(path) as z:
                if "features" not in z:
                    raise DatasetError(f"{path}: no 'features' array (has {sorted(z.files)})")
                arr = z["features"]
        else:
            arr = np.load(path)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read features ({exc})") from exc
    if arr.ndim == 2:
        arr = arr[:, None, :]  # (T, dim) -> (T, 1, dim)
    if arr.ndim != 3 or arr.shape[1:] != (regions, dim) or arr.shape[0] == 0:
        raise DatasetError(f"{path}: feature shape {arr.shape}, expected (frames>0, {regions}, {dim})")
    if not np.isfinite(arr).all():
        raise DatasetError(f"{path}: features contain NaN or inf")
    return arr.astype(np.float32)


@dataclass
class FeatureBank:
    """Region features of many videos, padded: features (N, T, R, D) float32, lengths (N,)."""

    ids: list[str]
    features: np.ndarray
    lengths: np.ndarray

    def batch(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Features (B, T', R, D) trimmed to the longest selected video, mask (B, T') int64."""
        t = int(self.lengths[idx].max())
        mask = (np.arange(t)[None, :] < self.lengths[idx][:, None]).astype(np.int64)
        return self.features[idx, :t], mask


def load_feature_bank(root: Path, video_ids: list[str], regions: int, dim: int) -> FeatureBank:
    """Read every video's feature file into one padded bank (video order kept)."""
    arrays = [read_features(feature_path(root, v), regions, dim) for v in video_ids]
    lengths = np.array([len(a) for a in arrays], np.int64)
    out = np.zeros((len(arrays), int(lengths.max(initial=1)), regions, dim), np.float32)
    for i, a in enumerate(arrays):
        out[i, : len(a)] = a
    return FeatureBank(list(video_ids), out, lengths)
