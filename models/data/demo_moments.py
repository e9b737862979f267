"""Long demo videos for moment retrieval: 30-150 s, several events, one query per event.

The short demo videos cannot tell moment heads apart (their windows cover ~half the video and every
saliency score is 4). Here each video has 3-5 events that never overlap; each event lasts 5-20 % of the
video; events share the digit or the colour with another event of the same video (distractors), so
a head must read the whole phrase. Saliency is graded by how visible the digit is: it fades in and out
(opacity ramps over the first and last 30 % of the event), and each 2-s clip's score (0-4) is the
clip's mean opacity x 4, plus one-point annotator noise for the 2nd and 3rd annotator.

Written under ``<out>/long/`` (QVHighlights format, 2-s GT clips as in QVHighlights)::

    manifest.jsonl                 same item format as the main demo manifest (indexable)
    videos/<id>.mp4                H.264, 128x128 (as the main demo), 2 fps (one frame per 0.5-s clip)
    moments_{train,val,test}.jsonl qid, query, vid, duration, relevant_windows, relevant_clip_ids, saliency_scores
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import av
import numpy as np
from tqdm import tqdm

from models.data.demo_corpus import COLORS, MOTIONS, SIZE, h264_stream
from models.moments.data import GT_CLIP_S, relevant_clip_ids

FPS = 2
RAMP = 0.3  # fraction of an event spent fading in (and out)
TRAVEL = 60.0  # pixels a moving digit travels over its whole event


def _events(rng: np.random.Generator, duration: float, labels: np.ndarray) -> list[dict[str, Any]]:
    """3-5 non-overlapping events sharing the digit or the colour of the first; times on a 0.5-s grid."""
    n = int(rng.integers(3, 6))
    d0, c0 = int(rng.integers(10)), str(rng.choice(list(COLORS)))
    seen: set[tuple[int, str, str]] = set()
    events = []
    while len(events) < n:
        share_digit = len(events) == 0 or rng.random() < 0.5
        digit = d0 if share_digit else int(rng.integers(10))
        color = c0 if not share_digit or len(events) == 0 else str(rng.choice(list(COLORS)))
        key = (digit, color, str(rng.choice(list(MOTIONS))))
        if key in seen:
            continue
        seen.add(key)
        glyph = int(rng.choice(np.flatnonzero(labels == digit)))
        length = max(1.5, round(float(rng.uniform(0.05, 0.20)) * duration * 2) / 2)
        events.append({"digit": digit, "color": color, "motion": key[2], "glyph": glyph, "length": length})
    while sum(e["length"] for e in events) > 0.9 * duration:  # keep room for gaps: events never overlap
        for e in events:
            e["length"] = max(1.5, math.floor(e["length"] * 1.6) / 2)  # x0.8 on the 0.5-s grid
    gaps = rng.dirichlet(np.ones(n + 1)) * (duration - sum(e["length"] for e in events))
    t = 0.0
    for e, gap in zip(rng.permutation(events), gaps, strict=False):
        e["start"] = math.floor((t + gap) * 2) / 2
        e["end"] = e["start"] + e["length"]
        e["x0"], e["y0"] = (float(v) for v in rng.uniform(24, SIZE - 48, size=2))
        t = e["end"]
    return sorted(events, key=lambda e: e["start"])


def visibility(e: dict[str, Any], t: np.ndarray) -> np.ndarray:
    """Digit opacity in [0, 1] at times ``t`` (s): 0 outside the event, ramps 0.2 -> 1 -> 0.2 inside."""
    ramp = RAMP * (e["end"] - e["start"])
    a = np.clip(np.minimum(t - e["start"], e["end"] - t) / ramp, 0.2, 1.0)
    return np.where((t >= e["start"]) & (t < e["end"]), a, 0.0)


def _render(path: Path, events: list[dict[str, Any]], duration: float, glyphs: np.ndarray, bg: int) -> None:
    with av.open(str(path), mode="w") as container:
        stream = h264_stream(container, FPS, SIZE)
        for i in range(int(round(duration * FPS))):
            t = i / FPS
            canvas = np.full((SIZE, SIZE, 3), bg, dtype=np.float32)
            for e in events:
                alpha = float(visibility(e, np.array([t]))[0])
                if alpha > 0:
                    _paint(canvas, glyphs[e["glyph"]] * alpha, e, t)
            frame = av.VideoFrame.from_ndarray(canvas.astype(np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _paint(canvas: np.ndarray, glyph: np.ndarray, e: dict[str, Any], t: float) -> None:
    dx, dy = MOTIONS[e["motion"]]
    frac = (t - e["start"]) / (e["end"] - e["start"])
    h, w = glyph.shape
    x = int(np.clip(e["x0"] + dx * TRAVEL * frac, 0, SIZE - w))
    y = int(np.clip(e["y0"] + dy * TRAVEL * frac, 0, SIZE - h))
    alpha = glyph[..., None]
    rgb = np.asarray(COLORS[e["color"]], np.float32)
    canvas[y : y + h, x : x + w] = canvas[y : y + h, x : x + w] * (1 - alpha) + rgb * alpha


def _query_row(vid: str, j: int, e: dict[str, Any], duration: float, rng: np.random.Generator) -> dict[str, Any]:
    """QVHighlights record of event ``e``: clips overlapping the window, saliency from mean opacity."""
    ids = relevant_clip_ids([(e["start"], e["end"])], duration)
    scores = []
    for c in ids:
        base = int(round(4 * float(visibility(e, c * GT_CLIP_S + np.arange(0.125, GT_CLIP_S, 0.25)).mean())))
        noisy = [int(np.clip(base + rng.integers(-1, 2), 0, 4)) for _ in range(2)]
        scores.append([base, *noisy])
    return {
        "qid": f"{vid}-{j}",
        "query": f"a {e['color']} {e['digit']} {e['motion']}",
        "vid": vid,
        "duration": duration,
        "relevant_windows": [[e["start"], e["end"]]],
        "relevant_clip_ids": ids,
        "saliency_scores": scores,
    }


def build_long_moments(out: Path, n: int, seed: int = 0) -> Path:
    """Write ``n`` long videos and their moment queries under ``out``; return the manifest path."""
    from models.data.demo_corpus import _glyphs, _split

    (out / "videos").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + 7919)  # its own stream: the short corpus stays byte-identical
    glyphs, labels = _glyphs()
    items, rows = [], {"train": [], "val": [], "test": []}
    for i in tqdm(range(n), desc="long videos", unit="video", disable=None if n >= 50 else True):
        vid = f"long{i:04d}"
        duration = float(rng.integers(15, 76) * 2)  # 30..150 s, even
        events = _events(rng, duration, labels)
        _render(out / "videos" / f"{vid}.mp4", events, duration, glyphs, bg=int(rng.integers(0, 40)))
        qrows = [_query_row(vid, j, e, duration, rng) for j, e in enumerate(events)]
        split = _split(i, n)
        rows[split] += qrows
        caps = [{"caption": r["query"], "relevant_windows": r["relevant_windows"]} for r in qrows]
        items.append(
            {
                "id": vid,
                "modality": "video",
                "uri": f"videos/{vid}.mp4",
                "duration": duration,
                "title": ", then ".join(r["query"] for r in qrows),
                "captions": caps,
                "split": split,
                "tags": sorted({e["color"] for e in events} | {str(e["digit"]) for e in events}),
            }
        )
    for split, rs in rows.items():
        (out / f"moments_{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rs))
    manifest = out / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(it) + "\n" for it in items))
    return manifest
