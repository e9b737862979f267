"""Videos longer than the temporal encoder's span: per-clip features and segment vectors by windows.

The video tower attends over at most ``max_frames`` clips (its positional table). A longer video is
cut into windows of at most that many clips; each window runs through the tower on its own.

- ``clip_features``: every clip's feature comes from the window in which that clip sits closest to
  the centre (windows overlap by half), so each clip sees context on both sides where there is any.
- ``segment_bounds``: the overlapping windows (in clips) whose pooled vectors become a long video's
  retrieval vectors.

A video no longer than the span is one window: its features equal ``model.encode_video`` exactly.
"""

from __future__ import annotations

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
