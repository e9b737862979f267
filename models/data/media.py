"""Media reading: videos decoded with PyAV at a fixed clip rate, images with Pillow.

One owner for how pixels reach the encoders, so training and indexing see identical frames.
Videos stream: ``ClipFrames`` yields the clip frames in chunks, so a decoder never holds more
than one chunk of frames whatever the video's length (``decode_video`` gathers them for short
videos and training). Images of every mode Pillow reads (16-bit, RGBA, grayscale, palette) are
brought to 8-bit RGB; for an animated GIF or a multi-page TIFF the first frame is the image.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

from xmr.errors import MediaError

__all__ = ["ClipFrames", "MediaError", "clip_times", "decode_video", "read_image"]


def clip_times(duration: float, clip_rate: float) -> np.ndarray:
    """Centre times (seconds) of the clips of a ``duration``-second video at ``clip_rate`` clips/s."""
    n = max(1, int(np.ceil(duration * clip_rate - 1e-6)))
    return (np.arange(n) + 0.5) / clip_rate


class ClipFrames:
    """One frame per clip (the frame nearest each clip centre), streamed in chunks.

    Iterating yields ``(t, size, size, 3)`` uint8 RGB arrays of at most ``chunk`` clips, in order;
    once exhausted, ``duration`` (seconds) and ``n_clips`` are set. Only chosen frames are scaled
    and converted, right when chosen, so memory is one chunk whatever the video's length. Raises
    ``MediaError`` naming the file when it cannot be read (possibly after some chunks were yielded).
    """

    def __init__(self, path: Path | str, clip_rate: float = 2.0, size: int = 64, chunk: int = 64) -> None:
        self.path, self.clip_rate, self.size, self.chunk = Path(path), clip_rate, size, chunk
        self.duration = 0.0
        self.n_clips = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        if not self.path.is_file():
            raise MediaError(f"{self.path}: file not found")
        try:
            with av.open(str(self.path)) as container:
                streams = [s for s in container.streams.video if not _is_cover_art(s)]
                if not streams:
                    raise MediaError(f"{self.path}: no video stream")
                yield from self._chunks(container, streams[0])
        except MediaError:
            raise
        except (av.error.FFmpegError, ValueError, OSError) as exc:
            raise MediaError(f"{self.path}: cannot decode video ({exc})") from exc
        if self.n_clips == 0:
            raise MediaError(f"{self.path}: video has no frames")

    def _chunks(self, container: Any, stream: Any) -> Iterator[np.ndarray]:
        buf: list[np.ndarray] = []
        last: tuple[Any, np.ndarray] | None = None  # a frame picked for several clips is converted once
        for frame in _pick_frames(container, stream, self.clip_rate, self):
            if last is None or last[0] is not frame:
                last = (frame, frame.reformat(width=self.size, height=self.size, format="rgb24").to_ndarray())
            buf.append(last[1])
            self.n_clips += 1
            if len(buf) == self.chunk:
                yield np.stack(buf)
                buf = []
        if buf:
            yield np.stack(buf)


def _is_cover_art(stream: Any) -> bool:
    """An audio file's embedded picture shows up as a one-frame video stream; it is not a video."""
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def decode_video(path: Path | str, clip_rate: float = 2.0, size: int = 64) -> tuple[np.ndarray, float]:
    """All clip frames at once: ``(frames (T, size, size, 3) uint8 RGB, duration in seconds)``.

    For videos that fit in memory (training, short items); see ``ClipFrames`` for streaming.
    """
    clips = ClipFrames(path, clip_rate, size)
    frames = list(clips)
    return np.concatenate(frames), clips.duration


def _pick_frames(container: Any, stream: Any, clip_rate: float, out: ClipFrames) -> Iterator[Any]:
    """Stream the decoder once; for each clip centre yield the nearest frame (ties go to the earlier).

    Times count from the first frame. Sets ``out.duration`` (seconds) at the end: the last frame
    lasts one frame interval.
    """
    n = 0
    prev: tuple[float, Any] | None = None
    step, origin = 0.0, None
    for frame in container.decode(stream):
        origin = float(frame.time or 0.0) if origin is None else origin  # e.g. MPEG-TS starts at 1.4 s
        t = float(frame.time or 0.0) - origin
        if prev is not None:
            step = t - prev[0]
            while (c := (n + 0.5) / clip_rate) <= t:  # centre c lies between prev and this frame
                yield prev[1] if c - prev[0] <= t - c else frame
                n += 1
        prev = (t, frame)
    if prev is None:
        return
    out.duration = prev[0] + step
    while n < len(clip_times(out.duration, clip_rate)):
        yield prev[1]
        n += 1


def read_image(path: Path | str, size: int = 64) -> np.ndarray:
    """Read an image as ``(1, size, size, 3)`` uint8 RGB (a one-frame video); first frame of a GIF/TIFF."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: file not found")
    try:
        with Image.open(path) as img:
            img.seek(0)
            arr = np.asarray(_to_rgb8(img).resize((size, size), Image.BILINEAR))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise MediaError(f"{path}: cannot decode image ({exc})") from exc
    return arr[None]


def _to_rgb8(img: Image.Image) -> Image.Image:
    """8-bit RGB of any Pillow mode: 16/32-bit integer images are scaled (not clipped) to 0..255,
    transparent pixels (RGBA, LA, palette with transparency) are composited over black."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        if img.mode.startswith("I;16") or a.max() > 255:  # a 16-bit file (Pillow may open it as "I")
            top = 65535.0 if img.mode != "F" else float(a.max())
        else:
            top = 255.0
        a = np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(a).convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(black, rgba).convert("RGB")
    return img.convert("RGB")
