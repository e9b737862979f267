"""Demo corpus: real mp4 videos and PNG images composed from scikit-learn's handwritten digits.

Every video shows 1-3 coloured digits ("actors") that appear, move and disappear at known
times; captions are generated from what happens, and each caption carries its ground-truth
moment windows in seconds. The corpus is written as

    <out>/manifest.jsonl              one line per item: id, modality, uri, duration, title, captions, split
    <out>/videos/<id>.mp4             H.264, 128x128, 10 fps
    <out>/images/<id>.png             128x128 RGB, digits over a scikit-image photograph
    <out>/msrvtt.json                 MSR-VTT style {"videos": [...], "sentences": [...]}
    <out>/moments_{train,val,test}.jsonl   QVHighlights style (qid, query, vid, duration, relevant_windows, ...)
    <out>/long/...                    optional long videos for moment retrieval (models/data/demo_moments.py)

Deterministic for a seed: the same arguments give byte-identical manifests and captions.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image
from tqdm import tqdm

from models.moments.data import relevant_clip_ids

log = logging.getLogger(__name__)

SIZE = 128  # frame side, pixels
FPS = 10
DIGIT_SCALE = 3  # 8x8 digits drawn at 24x24
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 90, 240),
    "yellow": (235, 220, 40),
}
MOTIONS: dict[str, tuple[float, float]] = {  # direction, pixels per second on (x, y)
    "moves left": (-1.0, 0.0),
    "moves right": (1.0, 0.0),
    "moves up": (0.0, -1.0),
    "moves down": (0.0, 1.0),
    "appears": (0.0, 0.0),
}
SPEED = 18.0  # pixels per second
PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "rocket", "immunohistochemistry")


@dataclass
class Actor:
    """One digit on screen from ``start`` to ``end`` seconds, moving along ``motion``."""

    digit: int
    color: str
    motion: str
    start: float
    end: float
    x0: float
    y0: float
    glyph: np.ndarray = field(repr=False)  # (24, 24) float alpha in [0, 1]

    @property
    def phrase(self) -> str:
        return f"a {self.color} {self.digit} {self.motion}"

    def position(self, t: float) -> tuple[int, int]:
        dx, dy = MOTIONS[self.motion]
        span = t - self.start
        x = np.clip(self.x0 + dx * SPEED * span, 0, SIZE - self.glyph.shape[1])
        y = np.clip(self.y0 + dy * SPEED * span, 0, SIZE - self.glyph.shape[0])
        return int(x), int(y)


def _glyphs() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images / 16.0  # (N, 8, 8) in [0, 1]
    big = np.kron(images, np.ones((1, DIGIT_SCALE, DIGIT_SCALE)))  # (N, 24, 24)
    return big.astype(np.float32), digits.target.astype(int)


def _photos() -> list[tuple[str, np.ndarray]]:
    from skimage import data as skdata

    photos = []
    for name in PHOTOS:
        img = np.asarray(getattr(skdata, name)())
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=-1)
        pil = Image.fromarray(img[..., :3].astype(np.uint8)).resize((SIZE, SIZE), Image.BILINEAR)
        photos.append((name, np.asarray(pil)))
    return photos


def _paint(canvas: np.ndarray, glyph: np.ndarray, color: str, x: int, y: int) -> None:
    h, w = glyph.shape
    region = canvas[y : y + h, x : x + w].astype(np.float32)
    rgb = np.asarray(COLORS[color], dtype=np.float32)
    alpha = glyph[..., None]
    canvas[y : y + h, x : x + w] = (region * (1 - alpha) + rgb * alpha).astype(np.uint8)


def _sample_actors(rng: np.random.Generator, duration: float, glyphs: np.ndarray, labels: np.ndarray) -> list[Actor]:
    n = int(rng.choice([1, 2, 3], p=[0.2, 0.4, 0.4]))
    actors = []
    for _ in range(n):
        idx = int(rng.integers(len(glyphs)))
        length = float(rng.uniform(2.0, min(4.0, duration)))
        start = round(float(rng.uniform(0.0, duration - length)) * 2) / 2  # half-second grid
        end = min(duration, start + round(length * 2) / 2)
        actors.append(
            Actor(
                digit=int(labels[idx]),
                color=str(rng.choice(list(COLORS))),
                motion=str(rng.choice(list(MOTIONS))),
                start=start,
                end=end,
                x0=float(rng.uniform(24, SIZE - 48)),
                y0=float(rng.uniform(24, SIZE - 48)),
                glyph=glyphs[idx],
            )
        )
    return sorted(actors, key=lambda a: (a.start, a.end))


def video_captions(actors: list[Actor], duration: float) -> list[dict[str, object]]:
    """Captions for one video; the first describes the whole video, the rest one actor each.

    Each caption has ``relevant_windows``: ``[[start, end], ...]`` in seconds.
    """
    full = ", then ".join(a.phrase for a in actors)
    span = [[actors[0].start, max(a.end for a in actors)]]
    caps: list[dict[str, object]] = [{"caption": full, "relevant_windows": span}]
    for a in actors:
        caps.append({"caption": a.phrase, "relevant_windows": [[a.start, a.end]]})
    return caps


def h264_stream(container: Any, fps: int = FPS, size: int = SIZE) -> Any:
    """Add the demo's H.264 video stream (``size`` px square, ``fps``) to an output container."""
    stream = container.add_stream("libx264", rate=fps)
    stream.width = stream.height = size
    stream.pix_fmt = "yuv420p"
    stream.options = {"crf": "20", "preset": "veryfast"}
    return stream


def write_video(path: Path, actors: list[Actor], duration: float, background: int) -> None:
    """Render ``actors`` to an H.264 mp4 at ``path`` (``duration`` seconds at FPS)."""
    with av.open(str(path), mode="w") as container:
        stream = h264_stream(container)
        for i in range(int(round(duration * FPS))):
            t = i / FPS
            canvas = np.full((SIZE, SIZE, 3), background, dtype=np.uint8)
            for a in actors:
                if a.start <= t < a.end:
                    _paint(canvas, a.glyph, a.color, *a.position(t))
            for packet in stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _split(i: int, n: int) -> str:
    frac = i / max(n, 1)
    return "train" if frac < 0.8 else ("val" if frac < 0.9 else "test")


def _moment_rows(vid: str, duration: float, captions: list[dict[str, object]]) -> list[dict[str, object]]:
    rows = []
    for j, cap in enumerate(captions):
        windows = cap["relevant_windows"]
        assert isinstance(windows, list)
        clip_ids = relevant_clip_ids(windows, duration)
        rows.append(
            {
                "qid": f"{vid}-{j}",
                "query": cap["caption"],
                "vid": vid,
                "duration": duration,
                "relevant_windows": windows,
                "relevant_clip_ids": clip_ids,
                "saliency_scores": [[4, 4, 4] for _ in clip_ids],
            }
        )
    return rows


def _make_videos(out: Path, n: int, rng: np.random.Generator, glyphs: np.ndarray, labels: np.ndarray) -> list[dict]:
    (out / "videos").mkdir(parents=True, exist_ok=True)
    items = []
    for i in tqdm(range(n), desc="videos", unit="video", disable=None if n >= 50 else True):
        vid = f"vid{i:05d}"
        duration = float(rng.integers(5, 9))  # 5..8 s
        actors = _sample_actors(rng, duration, glyphs, labels)
        write_video(out / "videos" / f"{vid}.mp4", actors, duration, background=int(rng.integers(0, 40)))
        caps = video_captions(actors, duration)
        items.append(
            {
                "id": vid,
                "modality": "video",
                "uri": f"videos/{vid}.mp4",
                "duration": duration,
                "title": str(caps[0]["caption"]),
                "captions": caps,
                "split": _split(i, n),
                "tags": sorted({a.color for a in actors} | {str(a.digit) for a in actors}),
            }
        )
    return items


def _make_images(out: Path, n: int, rng: np.random.Generator, glyphs: np.ndarray, labels: np.ndarray) -> list[dict]:
    (out / "images").mkdir(parents=True, exist_ok=True)
    photos = _photos()
    items = []
    for i in range(n):
        iid = f"img{i:05d}"
        name, photo = photos[int(rng.integers(len(photos)))]
        canvas = (photo.astype(np.float32) * 0.45).astype(np.uint8)  # dim so digits stand out
        parts = []
        for _ in range(int(rng.integers(1, 3))):
            idx = int(rng.integers(len(glyphs)))
            color = str(rng.choice(list(COLORS)))
            x, y = (int(v) for v in rng.integers(8, SIZE - 32, size=2))
            _paint(canvas, glyphs[idx], color, x, y)
            parts.append(f"a {color} {int(labels[idx])}")
        caption = " and ".join(parts) + f" on a photo of {name.replace('_', ' ')}"
        Image.fromarray(canvas).save(out / "images" / f"{iid}.png")
        items.append(
            {
                "id": iid,
                "modality": "image",
                "uri": f"images/{iid}.png",
                "duration": 0.0,
                "title": caption,
                "captions": [{"caption": caption, "relevant_windows": []}],
                "split": _split(i, n),
                "tags": [name],
            }
        )
    return items


def _write_formats(out: Path, videos: list[dict]) -> None:
    msrvtt = {
        "videos": [
            {
                "video_id": v["id"],
                "id": k,
                "split": v["split"],
                "url": v["uri"],
                "start time": 0.0,
                "end time": v["duration"],
                "category": 0,
            }
            for k, v in enumerate(videos)
        ],
        "sentences": [
            {"caption": c["caption"], "video_id": v["id"], "sen_id": j}
            for j, (v, c) in enumerate((v, c) for v in videos for c in v["captions"])
        ],
    }
    (out / "msrvtt.json").write_text(json.dumps(msrvtt, indent=1))
    for split in ("train", "val", "test"):
        rows = [r for v in videos if v["split"] == split for r in _moment_rows(v["id"], v["duration"], v["captions"])]
        (out / f"moments_{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def build_demo_corpus(out: Path, videos: int = 1000, images: int = 200, seed: int = 0, moment_videos: int = 0) -> Path:
    """Write the demo corpus under ``out`` and return the path of its ``manifest.jsonl``.

    ``moment_videos`` > 0 also writes the long-video moment set under ``out/long`` (models/data/demo_moments.py).
    """
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    glyphs, labels = _glyphs()
    vids = _make_videos(out, videos, rng, glyphs, labels)
    imgs = _make_images(out, images, rng, glyphs, labels)
    manifest = out / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(item) + "\n" for item in vids + imgs))
    _write_formats(out, vids)
    if moment_videos:
        from models.data.demo_moments import build_long_moments

        build_long_moments(out / "long", moment_videos, seed)
    log.info("demo corpus: %d videos, %d images -> %s", len(vids), len(imgs), out)
    return manifest
