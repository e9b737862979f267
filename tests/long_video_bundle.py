"""A generated 30-minute video where the described event happens only around minute 21, as a bundle.

The mp4 is real (PyAV, H.264, rendered at the clip rate to keep it quick); it is indexed by the
indexer's own build (streamed decode, window encoding of long videos, clip features from a trained
retrieval run), with the run's own moment head when it has one, else published again with the
stand-in moment head. Used by the any-length test and
by ``benchmarks/bench_moments.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

import bundle
from tests.standin_moment_head import republish_with_head

DURATION = 1800.0  # seconds
EVENT = ("a red 7 moves left", 1262.0, 1268.0)  # query, start s, end s: minute 21
DISTRACTORS = [  # (digit, colour, motion, start s): other digits and colours, spread over the video
    (3, "blue", "moves up", 300.0),
    (1, "green", "appears", 610.0),
    (9, "yellow", "moves down", 905.0),
    (4, "green", "moves right", 1500.0),
    (2, "blue", "moves down", 1700.0),
]
VIDEO_ID = "long30"
COLLECTION = "long"


@dataclass(frozen=True)
class LongVideo:
    root: Path
    collection: str
    video_id: str
    query: str
    event: tuple[float, float]  # seconds


def _actors() -> list[object]:
    from models.data.demo_corpus import Actor, _glyphs

    glyphs, labels = _glyphs()

    def actor(digit: int, color: str, motion: str, start: float, end: float) -> Actor:
        idx = int(np.flatnonzero(labels == digit)[0])
        return Actor(digit, color, motion, start, end, 80.0, 60.0, glyphs[idx])

    _, start, end = EVENT
    return [actor(7, "red", "moves left", start, end)] + [actor(d, c, m, s, s + 6.0) for d, c, m, s in DISTRACTORS]


def write_long_video(path: Path, fps: float) -> None:
    """Render the 30-minute mp4 at ``fps`` frames per second (the decoder picks one frame per clip)."""
    from models.data.demo_corpus import SIZE, _paint, h264_stream

    actors = _actors()
    with av.open(str(path), mode="w") as container:
        stream = h264_stream(container, int(fps))
        for i in range(int(DURATION * fps)):
            t = (i + 0.5) / fps  # the frame shown over [i/fps, (i+1)/fps): sample its middle
            canvas = np.full((SIZE, SIZE, 3), 20, dtype=np.uint8)
            for a in actors:
                if a.start <= t < a.end:  # type: ignore[attr-defined]
                    _paint(canvas, a.glyph, a.color, *a.position(t))  # type: ignore[attr-defined]
            for packet in stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def build_long_bundle(root: Path, run_dir: Path, span_clips: int = 64) -> LongVideo:
    """Write the video under ``root/media``, index it with ``xmr index build``'s code into collection "long"
    (clip features from ``run_dir``), then publish that bundle again with the stand-in moment head."""
    from indexer.build import build
    from models.checkpoint import load_trained

    _, _, cfg = load_trained(run_dir)
    media = root / "media"
    media.mkdir(parents=True, exist_ok=True)
    write_long_video(media / f"{VIDEO_ID}.mp4", fps=float(cfg["clip_rate"]))
    (media / "manifest.jsonl").write_text(json.dumps({"id": VIDEO_ID, "uri": f"{VIDEO_ID}.mp4"}) + "\n")
    path = build(media / "manifest.jsonl", COLLECTION, root, run_dir, batch_size=1).path
    if "moment_head" not in bundle.read_manifest(path):  # a run without a trained head: the stand-in
        republish_with_head(root, COLLECTION, run_dir, span_clips=span_clips)
    return LongVideo(root, COLLECTION, VIDEO_ID, EVENT[0], (EVENT[1], EVENT[2]))
