"""Mapper: media files -> segment vectors (W, E), their [start, end] seconds, and per-clip features (T, E).

A video no longer than the video tower's span (``max_frames`` clips) is one segment, encoded in a
batch with other short items; a longer one streams: its clip frames are decoded chunk by chunk (in a
prefetch thread) and encoded window by window (``models.long_video.encode_stream``), so memory is
bounded by a window batch, not by the video. Images are one-frame videos with one segment.
Unreadable media are reported (returned in ``failed``) and skipped; the rest are embedded.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexer.manifest import UNSUPPORTED, InputItem
from xmr.errors import MediaError

log = logging.getLogger(__name__)


@dataclass
class Embedded:
    """Embeddings of the readable items of one batch, in input order."""

    items: list[InputItem] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)  # each (W, E) float32 unit norm, one per segment
    segments: list[np.ndarray] = field(default_factory=list)  # each (W, 2) float64 [start, end] seconds
    clips: list[np.ndarray] = field(default_factory=list)  # each (T, E) float32; (0, E) for images
    durations: list[float] = field(default_factory=list)  # seconds, rounded to ms; 0 for images
    failed: list[tuple[InputItem, str]] = field(default_factory=list)

    def extend(self, other: Embedded) -> None:
        """Append ``other``'s items (and their vectors, segments, clips, durations, failures) in order."""
        self.items += other.items
        self.vectors += other.vectors
        self.segments += other.segments
        self.clips += other.clips
        self.durations += other.durations
        self.failed += other.failed


@dataclass
class LongVideo:
    """A video found to be longer than the span while decoding: its first chunks and the open rest."""

    head: list[np.ndarray]  # the chunks read so far, each (t, S, S, 3) uint8
    rest: Iterator[np.ndarray]
    source: Any  # the models.data.media.ClipFrames; its duration is known once ``rest`` is exhausted


@dataclass
class Decoded:
    """A batch after decoding: per readable item its frames (T, S, S, 3) uint8 or an open long video."""

    items: list[InputItem] = field(default_factory=list)
    frames: list[np.ndarray | LongVideo] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)  # seconds; 0 for images and (until read) long videos
    failed: list[tuple[InputItem, str]] = field(default_factory=list)


class Embedder:
    """Loads a trained run once; ``embed`` turns a batch of items into vectors."""

    def __init__(self, run_dir: Path, device: str | None = None) -> None:
        """``device``: a torch device name; default the best available (CUDA when present, else CPU)."""
        import torch

        from models.checkpoint import load_trained

        model, self.tokenizer, self.cfg = load_trained(run_dir)
        self.model: Any = model  # a models.DualEncoder; typed loosely so indexer/ stays torch-stub free
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device)
        # image-text runs (models/imagetext) embed image files through their own grid extractor + image tower
        self.image_text = self.cfg.get("task") == "image_text"
        self.clip_rate: float = float(self.cfg.get("clip_rate", 0.0))
        self.frame_size: int = int(self.cfg["frame_size"])
        self.dim: int = int(self.cfg["embed_dim"])
        # clips the video tower attends over at once (image-text runs have no video tower)
        self.span: int = int(self.cfg.get("vision", {}).get("max_frames", 1))

    def read(self, item: InputItem) -> tuple[np.ndarray | LongVideo, float]:
        """Frames (T, S, S, 3) uint8 and duration (s) of one item, or an open ``LongVideo``; raises MediaError."""
        from models.data.media import ClipFrames, read_image

        if self.image_text and item.modality != "image":
            name = self.cfg.get("name")
            raise MediaError(f"{item.uri}: model {name!r} is an image-text model; it embeds images only")
        if item.modality == "image":
            return read_image(item.path, self.frame_size), 0.0
        if item.modality != "video":
            kind = "unsupported type" if item.modality == UNSUPPORTED else f"unknown modality {item.modality!r}"
            raise MediaError(f"{item.uri}: {kind} ({item.path.suffix or 'no extension'})")
        source = ClipFrames(item.path, self.clip_rate, self.frame_size, chunk=self.span)
        rest = iter(source)
        head = list(itertools.islice(rest, 2))  # a second chunk exists only past the span
        if len(head) < 2:
            return head[0], round(source.duration, 3)
        return LongVideo(head, rest, source), 0.0

    def load(self, batch: list[InputItem]) -> Decoded:
        """Decode a batch (no model work), setting unreadable items aside with the reason."""
        out = Decoded()
        for item in batch:
            try:
                f, duration = self.read(item)
            except MediaError as exc:
                out.failed.append((item, str(exc)))
                continue
            out.items.append(item)
            out.frames.append(f)
            out.durations.append(duration)
        return out

    def encode(self, decoded: Decoded) -> Embedded:
        """Run the encoder on a decoded batch: short items in one forward pass, long videos streamed."""
        done = self.encode_short(decoded)
        out = Embedded(failed=list(decoded.failed))
        for i, (item, f) in enumerate(zip(decoded.items, decoded.frames, strict=True)):
            if isinstance(f, LongVideo):
                try:
                    done[i] = self.encode_long(f)
                except MediaError as exc:  # e.g. the file turned out truncated past the first chunks
                    out.failed.append((item, str(exc)))
                    continue
            vectors, clips, duration = done[i]
            out.items.append(item)
            out.vectors.append(vectors)
            out.segments.append(self.segment_seconds(len(vectors), len(clips), duration))
            out.clips.append(clips)
            out.durations.append(duration)
        return out

    def encode_short(self, decoded: Decoded) -> dict[int, tuple[np.ndarray, np.ndarray, float]]:
        """Position in the batch -> (vector (1, E), clips (T, E), seconds) of every item that fits the span."""
        short = [i for i, f in enumerate(decoded.frames) if isinstance(f, np.ndarray)]
        if not short:
            return {}
        vecs, per_item = self.forward([decoded.frames[i] for i in short])  # type: ignore[misc]
        done = {}
        for k, i in enumerate(short):
            clips = per_item[k] if decoded.items[i].modality == "video" else per_item[k][:0]  # images: no clips
            done[i] = (vecs[k : k + 1], clips, decoded.durations[i])
        return done

    def encode_long(self, video: LongVideo) -> tuple[np.ndarray, np.ndarray, float]:
        """Stream a long video through the tower window by window: (vectors (W, E), clips (T, E), seconds)."""
        from models.long_video import encode_stream

        chunks = itertools.chain(video.head, prefetch(video.rest))
        video.head = []  # the stream owns the head chunks now; let them go once encoded
        vectors, clips = encode_stream(self.model, chunks, self.span, self.device)
        return vectors, clips, round(video.source.duration, 3)

    def segment_seconds(self, n_windows: int, n_clips: int, duration: float) -> np.ndarray:
        """(W, 2) [start, end] seconds of the windows of ``segment_bounds(n_clips, span)``; one
        window spans the whole item (``[0, duration]``)."""
        from models.long_video import segment_bounds

        if n_windows == 1:
            return np.array([[0.0, duration]])
        bounds = np.array(segment_bounds(n_clips, self.span), np.float64) / self.clip_rate  # (W, 2)
        return np.round(np.minimum(bounds, duration), 3)

    def embed(self, batch: list[InputItem]) -> Embedded:
        return self.encode(self.load(batch))

    def forward(self, frames: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Raw encoder forward on decoded frames: vectors (B, E) and per-item clips [(T_i, E)]."""
        import torch

        if self.image_text:
            with torch.no_grad():
                pixels = torch.from_numpy(np.stack([f[0] for f in frames])).to(self.device)  # (B, S, S, 3)
                vecs = self.model.encode_pixels(pixels).cpu().numpy().astype(np.float32)
            return vecs, [np.zeros((0, self.dim), np.float32) for _ in frames]
        lengths = np.array([len(f) for f in frames])
        padded = np.zeros((len(frames), int(lengths.max()), *frames[0].shape[1:]), np.uint8)
        for i, f in enumerate(frames):
            padded[i, : len(f)] = f
        mask = (np.arange(padded.shape[1])[None] < lengths[:, None]).astype(np.int64)
        with torch.no_grad():
            v, c = self.model.encode_video(
                torch.from_numpy(padded).to(self.device), torch.from_numpy(mask).to(self.device)
            )
        clips = c.cpu().numpy()
        return v.cpu().numpy().astype(np.float32), [clips[i, :n].astype(np.float32) for i, n in enumerate(lengths)]


def prefetch(chunks: Iterator[np.ndarray], depth: int = 2) -> Iterator[np.ndarray]:
    """Yield ``chunks`` while a thread decodes up to ``depth`` ahead (PyAV releases the GIL while
    decoding, so decoding overlaps the encoder). Errors of the producer are raised here, in order."""
    q: queue.Queue[tuple[str, Any]] = queue.Queue(depth)
    stop = threading.Event()

    def put(msg: tuple[str, Any]) -> bool:
        while not stop.is_set():  # the consumer may have gone (an error downstream): then give up
            try:
                q.put(msg, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            if all(put(("chunk", chunk)) for chunk in chunks):
                put(("end", None))
        except BaseException as exc:  # handed to the consumer, which raises it
            put(("error", exc))

    threading.Thread(target=produce, name="xmr-decode-long", daemon=True).start()
    try:
        while (msg := q.get())[0] == "chunk":
            yield msg[1]
        if msg[0] == "error":
            raise msg[1]
    finally:
        stop.set()


def batches(items: list[InputItem], size: int) -> Iterator[list[InputItem]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def model_id(run_dir: Path, cfg: dict[str, Any]) -> str:
    """Model name + first 12 hex of the checkpoint's sha256: changes whenever the weights do."""
    from bundle import sha256_file

    ckpt = run_dir / "last.pt" if run_dir.is_dir() else run_dir
    return f"{cfg.get('name', cfg['arch'])}-{sha256_file(ckpt)[:12]}"
