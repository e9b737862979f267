"""Media reading: videos decoded with PyAV at a fixed clip rate, images with Pillow.

One owner for how pixels reach the encoders, so training and indexing see identical frames.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

from xmr.errors import MediaError

__all__ = ["MediaError", "clip_times", "decode_video", "read_image"]


def clip_times(duration: float, clip_rate: float) -> np.ndarray:
    """Centre times (seconds) of the clips of a ``duration``-second video at ``clip_rate`` clips/s."""
    n = max(1, int(np.ceil(duration * clip_rate - 1e-6)))
    return (np.arange(n) + 0.5) / clip_rate


def decode_video(path: Path | str, clip_rate: float = 2.0, size: int = 64) -> tuple[np.ndarray, float]:
    """Decode one frame per clip (the frame nearest each clip centre).

    Returns ``(frames, duration)``: frames ``(T, size, size, 3)`` uint8 RGB, duration in seconds.
    Only the chosen frames are scaled and converted (the costly step), so memory stays O(T)
    whatever the video's length. Raises ``MediaError`` naming the file when it cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: file not found")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"{path}: no video stream")
            picked, duration = _pick_frames(container, container.streams.video[0], clip_rate)
            frames = [f.reformat(width=size, height=size, format="rgb24").to_ndarray() for f in picked]
    except MediaError:
        raise
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise MediaError(f"{path}: cannot decode video ({exc})") from exc
    if not frames:
        raise MediaError(f"{path}: video has no frames")
    return np.stack(frames), duration


def _pick_frames(container: Any, stream: Any, clip_rate: float) -> tuple[list[Any], float]:
    """Stream the decoder once; for each clip centre keep the nearest frame (ties go to the earlier)."""
    picked: list[Any] = []
    prev: tuple[float, Any] | None = None
    step = 0.0
    for frame in container.decode(stream):
        t = float(frame.time or 0.0)
        if prev is not None:
            step = t - prev[0]
            while (c := (len(picked) + 0.5) / clip_rate) <= t:  # centre c lies between prev and this frame
                picked.append(prev[1] if c - prev[0] <= t - c else frame)
        prev = (t, frame)
    if prev is None:
        return [], 0.0
    duration = prev[0] + step  # the last frame lasts one frame interval
    while len(picked) < len(clip_times(duration, clip_rate)):
        picked.append(prev[1])
    return picked, duration


def read_image(path: Path | str, size: int = 64) -> np.ndarray:
    """Read an image as ``(1, size, size, 3)`` uint8 RGB (a one-frame video)."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: file not found")
    try:
        with Image.open(path) as img:
            arr = np.asarray(img.convert("RGB").resize((size, size), Image.BILINEAR))
    except OSError as exc:
        raise MediaError(f"{path}: cannot decode image ({exc})") from exc
    return arr[None]
