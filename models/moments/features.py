"""Per-clip features of moment videos from a trained retrieval run, cached in the Moment-DETR layout.

Each video is decoded with the project's decoder (``decode_video`` at the run's ``clip_rate``) and
encoded by the run's video tower window by window (``models.long_video.encode_windows``, so videos
longer than the tower's positional span get features too). Features are stored as the indexer stores
them (float16, unit norm) in ``{cache}/{vid}.npz`` with a ``features`` (clips, E) array, and read back
as float32, so heads train on exactly what the service will feed them.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from models.data.media import decode_video
from models.long_video import encode_windows
from models.moments.data import MomentDataError, read_video_features, video_paths

log = logging.getLogger(__name__)


def run_key(run_dir: Path) -> str:
    """Short id of a retrieval checkpoint (sha256 of ``last.pt``): features are cached per model."""
    h = hashlib.sha256()
    with (run_dir / "last.pt").open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


def feature_dir(run_dir: Path, data_dir: Path) -> Path:
    return data_dir / ".cache" / f"moment-clips-{run_key(run_dir)}"


def clip_features(run_dir: Path, data_dir: Path, vids: list[str], model: Any = None) -> dict[str, np.ndarray]:
    """vid -> (T, E) float32 clip features for every vid, computing (and caching) the missing ones."""
    from models.checkpoint import load_trained

    out_dir = feature_dir(run_dir, data_dir)
    todo = sorted({v for v in vids if not (out_dir / f"{v}.npz").is_file()})
    if todo:
        paths = video_paths(data_dir)
        missing = [v for v in todo if v not in paths]
        if missing:
            raise MomentDataError(f"{data_dir}: no video file for vid {missing[0]!r} ({len(missing)} missing)")
        model, _, cfg = load_trained(run_dir) if model is None else (model, None, model.cfg)
        out_dir.mkdir(parents=True, exist_ok=True)
        for vid in tqdm(todo, desc="clip features", unit="video", disable=None if len(todo) >= 20 else True):
            frames, _ = decode_video(paths[vid], cfg["clip_rate"], cfg["frame_size"])
            _, clips = encode_windows(model, frames, span=cfg["vision"]["max_frames"])
            tmp = out_dir / f"{vid}.tmp.npz"
            np.savez(tmp, features=clips.astype(np.float16))
            tmp.replace(out_dir / f"{vid}.npz")
    return {v: read_video_features(out_dir, v) for v in sorted(set(vids))}
