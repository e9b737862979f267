"""Dataset readers: MSR-VTT json (video-text), the xmr manifest (images), and a decoded-frame cache."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.data.media import MediaError, decode_video, read_image
from xmr.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class Sample:
    """One video or image with its captions. ``captions[0]`` describes the whole item."""

    id: str
    modality: str
    path: Path
    split: str
    captions: list[str]


def read_msrvtt(path: Path) -> list[Sample]:
    """Read an MSR-VTT style json (``videos`` with ``video_id``/``split``/``url``, ``sentences``).

    Raises DataError naming the file when it is missing, not JSON, or lacks a field.
    """
    if not path.is_file():
        raise DataError(f"{path} not found; write a corpus with `xmr demo-data --out {path.parent}`")
    try:
        doc = json.loads(path.read_text())
        caps: dict[str, list[str]] = {}
        for s in sorted(doc["sentences"], key=lambda s: s["sen_id"]):
            caps.setdefault(s["video_id"], []).append(s["caption"])
        return [
            Sample(v["video_id"], "video", path.parent / v["url"], v["split"], caps.get(v["video_id"], []))
            for v in doc["videos"]
        ]
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from exc
    except (KeyError, TypeError) as exc:  # a field missing, or of the wrong kind
        raise DataError(f"{path}: not an MSR-VTT annotation file (field {exc} missing or malformed)") from exc


def read_manifest_images(path: Path) -> list[Sample]:
    """Captioned images of a demo-corpus ``manifest.jsonl``; raises DataError naming the bad line."""
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        try:
            item = json.loads(line)
            if item["modality"] == "image":
                caps = [c["caption"] for c in item.get("captions", [])]
                out.append(Sample(item["id"], "image", path.parent / item["uri"], item.get("split", "train"), caps))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataError(f"{path}:{n}: malformed item ({type(exc).__name__}: {exc})") from exc
    return out


def load_corpus(data_dir: Path) -> list[Sample]:
    """Videos from ``msrvtt.json`` and images from ``manifest.jsonl`` under ``data_dir``."""
    samples = read_msrvtt(data_dir / "msrvtt.json")
    if (data_dir / "manifest.jsonl").is_file():
        samples += read_manifest_images(data_dir / "manifest.jsonl")
    return samples


@dataclass
class FrameBank:
    """Decoded frames of many items, padded: frames (N, T, S, S, 3) uint8, lengths (N,)."""

    ids: list[str]
    frames: np.ndarray
    lengths: np.ndarray

    def batch(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Frames (B, T', S, S, 3) trimmed to the longest selected item, mask (B, T') int64."""
        t = int(self.lengths[idx].max())
        mask = (np.arange(t)[None, :] < self.lengths[idx][:, None]).astype(np.int64)
        return self.frames[idx, :t], mask


def decode_all(samples: list[Sample], clip_rate: float, size: int) -> FrameBank:
    """Decode every sample (videos at ``clip_rate`` clips/s, images as one frame) into a FrameBank."""
    clips: list[np.ndarray] = []
    for s in tqdm(samples, desc="decoding", unit="item", disable=None if len(samples) >= 100 else True):
        try:
            clips.append(
                decode_video(s.path, clip_rate, size)[0] if s.modality == "video" else read_image(s.path, size)
            )
        except MediaError as exc:
            log.warning("skipping %s", exc)
            clips.append(np.zeros((0, size, size, 3), np.uint8))
    lengths = np.array([len(c) for c in clips])
    frames = np.zeros((len(clips), max(int(lengths.max()), 1), size, size, 3), np.uint8)
    for i, c in enumerate(clips):
        frames[i, : len(c)] = c
    return FrameBank([s.id for s in samples], frames, lengths)


def cached_frames(samples: list[Sample], clip_rate: float, size: int, cache_dir: Path) -> FrameBank:
    """``decode_all`` with an on-disk cache keyed by the item list, clip rate and frame size."""
    key = hashlib.sha256(json.dumps([[s.id, str(s.path)] for s in samples] + [clip_rate, size]).encode()).hexdigest()
    path = cache_dir / f"frames-{key[:16]}.npz"
    if path.is_file():
        z = np.load(path)
        return FrameBank([str(i) for i in z["ids"]], z["frames"], z["lengths"])
    bank = decode_all(samples, clip_rate, size)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, ids=np.array(bank.ids), frames=bank.frames, lengths=bank.lengths)
    tmp.replace(path)
    return bank
