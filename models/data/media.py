"""Media reading: videos decoded with PyAV at a fixed clip rate, images with Pillow.

One owner for how pixels reach the encoders, so training and indexing see identical frames.
"""

from __future__ import annotations

from pathlib import Path

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
    Raises ``MediaError`` naming the file when it cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: file not found")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"{path}: no video stream")
            stream = container.streams.video[0]
            decoded = [
                (float(f.time or 0.0), f.reformat(width=size, height=size, format="rgb24").to_ndarray())
                for f in container.decode(stream)
            ]
    except MediaError:
        raise
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise MediaError(f"{path}: cannot decode video ({exc})") from exc
    if not decoded:
        raise MediaError(f"{path}: video has no frames")
    times = np.array([t for t, _ in decoded])
    step = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    duration = float(times[-1] + step)
    centres = clip_times(duration, clip_rate)
    picks = np.abs(times[None, :] - centres[:, None]).argmin(axis=1)  # (T,)
    return np.stack([decoded[i][1] for i in picks]), duration


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
