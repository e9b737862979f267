"""Videos longer than the temporal encoder's span: per-clip features and segment vectors by windows.

The video tower attends over at most ``max_frames`` clips (its positional table). A longer video is
cut into windows of at most that many clips; each window runs through the tower on its own.

- ``clip_features``: every clip's feature comes from the window in which that clip sits closest to
  the centre (windows overlap by half), so each clip sees context on both sides where there is any.
- ``segment_bounds``: the overlapping windows (in clips) whose pooled vectors become a long video's
  retrieval vectors.

A video no longer than the span is one window: its features equal ``model.encode_video`` exactly.

``encode_windows`` takes all frames at once; ``encode_stream`` gives the same result from a stream
of frame chunks, holding a few windows' frames, so a 2-hour video never sits in memory (the indexer
uses it; tests/models/test_long_video.py checks it against ``encode_windows``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch


def segment_bounds(n_clips: int, span: int, stride: int | None = None) -> list[tuple[int, int]]:
    """Half-open clip windows ``[a, b)`` of at most ``span`` clips covering ``[0, n_clips)``.

    Windows start every ``stride`` clips (default ``span // 2``); the last one ends at ``n_clips``.
    """
    if n_clips <= span:
        return [(0, n_clips)]
    stride = stride or max(1, span // 2)
    starts = list(range(0, n_clips - span, stride)) + [n_clips - span]
    return [(a, a + span) for a in starts]


@torch.no_grad()
def encode_windows(model: Any, frames: np.ndarray, span: int, device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Encode a video of any length window by window.

    ``frames`` (T, S, S, 3) uint8 -> ``(vectors (W, E), clips (T, E))``, both unit norm, float32:
    one pooled vector per window of ``segment_bounds(T, span)`` and one feature per clip.
    """
    bounds = segment_bounds(len(frames), span)
    vectors, best = [], np.full(len(frames), np.inf)
    clips = np.zeros((len(frames), 0), np.float32)
    for a, b in bounds:
        x = torch.from_numpy(np.ascontiguousarray(frames[a:b]))[None].to(device)  # (1, t, S, S, 3)
        v, c = model.encode_video(x, torch.ones(1, b - a, dtype=torch.long, device=device))
        vectors.append(v[0].cpu().numpy())
        c = c[0].cpu().numpy()  # (t, E)
        if clips.shape[1] == 0:
            clips = np.zeros((len(frames), c.shape[1]), np.float32)
        dist = np.abs(np.arange(a, b) - (a + b - 1) / 2)  # distance of each clip from its window's centre
        take = dist < best[a:b]
        clips[a:b][take] = c[take]
        best[a:b] = np.minimum(best[a:b], dist)
    return np.stack(vectors).astype(np.float32), clips


class _ClipMerger:
    """Per-clip features of a growing video: each clip keeps its feature from the window where it sits
    closest to the centre (the first such window on ties), exactly as ``encode_windows`` picks."""

    def __init__(self) -> None:
        self.clips = np.zeros((0, 0), np.float32)  # (capacity, E), grown by doubling
        self.best = np.zeros(0)

    def add(self, a: int, b: int, c: np.ndarray) -> None:
        """Merge window ``[a, b)``'s clip features ``c`` (b - a, E)."""
        if b > len(self.clips):
            cap = max(b, 2 * len(self.clips))
            grown = np.zeros((cap, c.shape[1]), np.float32)
            if len(self.clips):
                grown[: len(self.clips)] = self.clips
            self.clips, self.best = grown, np.concatenate([self.best, np.full(cap - len(self.best), np.inf)])
        dist = np.abs(np.arange(a, b) - (a + b - 1) / 2)
        take = dist < self.best[a:b]
        self.clips[a:b][take] = c[take]
        self.best[a:b] = np.minimum(self.best[a:b], dist)


@torch.no_grad()
def encode_stream(
    model: Any, chunks: Iterable[np.ndarray], span: int, device: str = "cpu", windows_per_batch: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """``encode_windows`` over a stream: the same ``(vectors (W, E), clips (T, E))`` for the frames that
    ``chunks`` yields (each ``(t, S, S, 3)`` uint8), holding only a bounded run of frames.

    A window is encoded as soon as it is known to be one of ``segment_bounds(T, span)``'s (every window
    but the last can be placed before ``T`` is known); ``windows_per_batch`` windows share a forward
    pass. Frames held: at most ``span + (windows_per_batch - 1) * span // 2`` plus one chunk.
    """
    stride = max(1, span // 2)
    buf, base, n, next_start = np.zeros((0, 0, 0, 3), np.uint8), 0, 0, 0
    pending: list[tuple[int, int]] = []
    vectors: list[np.ndarray] = []
    merger = _ClipMerger()

    def flush() -> None:  # a forward pass per windows_per_batch windows, however large the chunks were
        for i in range(0, len(pending), windows_per_batch):
            group = pending[i : i + windows_per_batch]
            v, cs = _encode_same_length(model, [buf[a - base : b - base] for a, b in group], device)
            vectors.extend(v)
            for (a, b), c in zip(group, cs, strict=True):
                merger.add(a, b, c)
        pending.clear()

    for chunk in chunks:
        buf = np.concatenate([buf, chunk]) if len(buf) else chunk
        n += len(chunk)
        while next_start + span < n:  # a window that cannot be the last one
            pending.append((next_start, next_start + span))
            next_start += stride
        if len(pending) >= windows_per_batch:
            flush()
        keep = min([next_start, max(n - span, 0)] + [a for a, _ in pending])  # the last span frames stay
        buf, base = buf[keep - base :], keep
    if n <= span:
        pending.append((0, n))
    else:  # the windows left, the last one ending at the last clip
        pending.extend((a, a + span) for a in [*range(next_start, n - span, stride), n - span])
    flush()
    return np.stack(vectors).astype(np.float32), merger.clips[:n]


def _encode_same_length(model: Any, windows: list[np.ndarray], device: str) -> tuple[np.ndarray, np.ndarray]:
    """Windows of one length ``t`` as one batch: ``(vectors (B, E), clips (B, t, E))`` float32."""
    x = torch.from_numpy(np.ascontiguousarray(np.stack(windows))).to(device)  # (B, t, S, S, 3)
    v, c = model.encode_video(x, torch.ones(x.shape[:2], dtype=torch.long, device=device))
    return v.cpu().numpy().astype(np.float32), c.cpu().numpy().astype(np.float32)
