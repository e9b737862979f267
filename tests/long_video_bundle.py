"""A generated 30-minute video where the described event happens only around minute 21, as a bundle.

The mp4 is real (PyAV, H.264, rendered at the clip rate to keep it quick), its clip features come
from a trained retrieval run (decoded with the project's decoder, encoded window by window with
``models.long_video.encode_windows``), and the bundle is written through the bundle writer with the
stand-in moment head. Used by the any-length test and by ``benchmarks/bench_moments.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

import bundle
from tests.standin_moment_head import export_standin

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
    from models.data.demo_corpus import SIZE, _paint

    actors = _actors()
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=int(fps))
        stream.width = stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast"}
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
    """Write the video under ``root/media`` and publish collection "long" holding it, with a moment head."""
    import torch

    from indexer.build import write_index
    from models.checkpoint import load_trained
    from models.data.media import decode_video
    from models.export import export_text_encoder
    from models.long_video import encode_windows

    model, tok, cfg = load_trained(run_dir)
    (root / "media").mkdir(parents=True, exist_ok=True)
    path = root / "media" / f"{VIDEO_ID}.mp4"
    write_long_video(path, fps=float(cfg["clip_rate"]))
    frames, duration = decode_video(path, float(cfg["clip_rate"]), int(cfg["frame_size"]))
    with torch.no_grad():
        vectors, clips = encode_windows(model, frames, span=int(cfg["vision"]["max_frames"]))
    vec = vectors.mean(0)
    version, staging = bundle.staging_dir(root, COLLECTION)
    write_index(staging / bundle.INDEX, (vec / np.linalg.norm(vec))[None])
    bundle.write_clips(staging, [clips], clips.shape[1])
    bundle.write_items(staging / bundle.ITEMS, [bundle.Item(0, VIDEO_ID, "video", path.name, duration, "", [], {})])
    bundle.write_segments(staging / bundle.ITEMS, np.zeros(1, np.int64), np.array([[0.0, duration]]))
    export_text_encoder(model, tok, staging)
    entry = export_standin(run_dir, staging, span_clips=span_clips)
    fields = {"model_id": "long-test", "dim": clips.shape[1], "counts": {"video": 1, "image": 0}}
    fields |= {"clip_rate": float(cfg["clip_rate"]), "moment_head": entry, bundle.MEDIA_ROOT: str(path.parent)}
    bundle.publish(root, COLLECTION, version, staging, fields)
    return LongVideo(root, COLLECTION, VIDEO_ID, EVENT[0], (EVENT[1], EVENT[2]))
