"""Mapper: media files -> item embeddings (E,) and per-clip features (T, E), in batches.

Unreadable media are reported (returned in ``failed``) and skipped; the rest are embedded.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexer.manifest import InputItem
from xmr.errors import MediaError

log = logging.getLogger(__name__)


@dataclass
class Embedded:
    """Embeddings of the readable items of one batch, in input order."""

    items: list[InputItem] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)  # each (E,) float32, unit norm
    clips: list[np.ndarray] = field(default_factory=list)  # each (T, E) float32; (0, E) for images
    durations: list[float] = field(default_factory=list)  # seconds; 0 for images
    failed: list[tuple[InputItem, str]] = field(default_factory=list)

    def extend(self, other: Embedded) -> None:
        """Append ``other``'s items (and their vectors, clips, durations, failures) in order."""
        self.items += other.items
        self.vectors += other.vectors
        self.clips += other.clips
        self.durations += other.durations
        self.failed += other.failed


@dataclass
class Decoded:
    """A batch after decoding: frames of the readable items, and the unreadable ones with reasons."""

    items: list[InputItem] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)  # each (T, S, S, 3) uint8
    durations: list[float] = field(default_factory=list)
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

    def read(self, item: InputItem) -> tuple[np.ndarray, float]:
        """Frames (T, S, S, 3) uint8 and duration (s) of one item; raises MediaError."""
        from models.data.media import decode_video, read_image

        if self.image_text and item.modality != "image":
            name = self.cfg.get("name")
            raise MediaError(f"{item.uri}: model {name!r} is an image-text model; it embeds images only")
        if item.modality == "video":
            return decode_video(item.path, self.clip_rate, self.frame_size)
        if item.modality == "image":
            return read_image(item.path, self.frame_size), 0.0
        raise MediaError(f"{item.uri}: unknown modality {item.modality!r}")

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
        """Run the encoder on a decoded batch."""
        out = Embedded(items=decoded.items, durations=decoded.durations, failed=decoded.failed)
        if decoded.frames:
            vecs, clips = self.forward(decoded.frames)
            out.vectors = list(vecs)
            out.clips = [c if it.modality == "video" else c[:0] for c, it in zip(clips, out.items, strict=True)]
        return out

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


def batches(items: list[InputItem], size: int) -> Iterator[list[InputItem]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def model_id(run_dir: Path, cfg: dict[str, Any]) -> str:
    """Model name + first 12 hex of the checkpoint's sha256: changes whenever the weights do."""
    from bundle import sha256_file

    ckpt = run_dir / "last.pt" if run_dir.is_dir() else run_dir
    return f"{cfg.get('name', cfg['arch'])}-{sha256_file(ckpt)[:12]}"
