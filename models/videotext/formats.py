"""Published video-text data layouts, read as they are distributed (CLIP4Clip-style loaders).

- MSR-VTT 1k-A test file ``MSRVTT_JSFUSION_test.csv``: header ``key,vid_key,video_id,sentence``, one
  caption per test video, next to the full-split json (``read_msrvtt``); ``MSRVTT_train.9k.csv``:
  header ``video_id``, one training video per row.
- LSMDC ``LSMDC16_annos_*.csv``: tab-separated, 6 fields per line
  ``clip_id, start_aligned, end_aligned, start_extracted, end_extracted, sentence``.
- DiDeMo ``{train,val,test}_data.json``: a list of ``{"video", "description", "times"}``; ``times`` are
  5-second segment indexes ``[first, last]``. Retrieval concatenates each video's descriptions into a
  paragraph (in order of their start) - the paragraph is ``captions[0]``, the sentences follow.
- Per-video frame/region features ``<video_id>.npy`` or ``.npz`` (key ``features``): (frames, dim) or
  (frames, regions, dim) float, an alternative to decoding mp4.

Malformed entries raise ``DatasetError`` naming the file and the entry (line, index or id).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.data.datasets import Sample
from xmr.errors import DataError

JSFUSION_HEADER = ["key", "vid_key", "video_id", "sentence"]
DIDEMO_SEGMENT_S = 5.0  # DiDeMo annotates 5-second segments


class DatasetError(DataError):
    """A data set file or one of its entries is malformed (the message names file and entry)."""


@dataclass
class Paragraph(Sample):
    """A DiDeMo video: ``captions[0]`` is the paragraph; ``windows[i]`` (seconds) is sentence i's moment."""

    windows: list[list[float]] = field(default_factory=list)


def read_jsfusion(path: Path, known: Iterable[str]) -> list[tuple[str, str]]:
    """The 1k-A test pairs ``(video_id, sentence)`` of ``path``; every video id must be in ``known``."""
    known = set(known)
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header != JSFUSION_HEADER:
            raise DatasetError(f"{path}: header {header} is not {JSFUSION_HEADER}")
        pairs = [_jsfusion_row(path, n, row, known) for n, row in enumerate(reader, start=2)]
    if len({v for v, _ in pairs}) != len(pairs):
        raise DatasetError(f"{path}: a video appears twice; 1k-A has one caption per test video")
    return pairs


def _jsfusion_row(path: Path, line: int, row: list[str], known: set[str]) -> tuple[str, str]:
    if len(row) != len(JSFUSION_HEADER):
        raise DatasetError(f"{path}:{line}: {len(row)} fields, expected {len(JSFUSION_HEADER)}")
    video_id, sentence = row[2], row[3].strip()
    if video_id not in known:
        raise DatasetError(f"{path}:{line}: unknown video id {video_id!r}")
    if not sentence:
        raise DatasetError(f"{path}:{line}: empty sentence for video {video_id!r}")
    return video_id, sentence


def write_jsfusion(path: Path, pairs: list[tuple[str, str]]) -> None:
    """Write 1k-A style test pairs (what ``read_jsfusion`` reads); ``key`` is ``ret<n>`` as published."""
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(JSFUSION_HEADER)
        for n, (vid, sentence) in enumerate(pairs):
            w.writerow([f"ret{n}", f"msr{n}", vid, sentence])


def read_train_ids(path: Path, known: Iterable[str]) -> list[str]:
    """``MSRVTT_train.9k.csv``-style list of training video ids (header ``video_id``)."""
    known = set(known)
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for n, row in enumerate(rows, start=2):
        if row.get("video_id") not in known:
            raise DatasetError(f"{path}:{n}: unknown video id {row.get('video_id')!r}")
    return [r["video_id"] for r in rows]


def read_lsmdc(path: Path, video_dir: Path, split: str = "test") -> list[Sample]:
    """LSMDC clips with their sentence; a clip's video is ``<movie>/<clip_id>.avi`` under ``video_dir``."""
    out = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.rstrip("\n").split("\t")
        if len(fields) != 6:
            raise DatasetError(f"{path}:{n}: {len(fields)} tab-separated fields, expected 6")
        clip_id, sentence = fields[0], fields[5].strip()
        if not sentence:
            raise DatasetError(f"{path}:{n}: empty sentence for clip {clip_id!r}")
        movie = clip_id[: clip_id.rindex("_")] if "_" in clip_id else clip_id
        video = video_dir / movie / f"{clip_id}.avi"
        if not video.is_file():
            raise DatasetError(f"{path}:{n}: unknown video id {clip_id!r} (no {video})")
        out.append(Sample(clip_id, "video", video, split, [sentence]))
    return out


def read_didemo(path: Path, video_dir: Path, split: str = "test") -> list[Paragraph]:
    """DiDeMo entries grouped per video into paragraphs (see the module docstring)."""
    doc = json.loads(path.read_text())
    if not isinstance(doc, list):
        raise DatasetError(f"{path}: expected a list of entries")
    grouped: dict[str, list[tuple[list[float], str]]] = {}
    for i, entry in enumerate(doc):
        video, sentence, window = _didemo_entry(path, i, entry)
        grouped.setdefault(video, []).append((window, sentence))
    out = []
    for video, parts in grouped.items():
        if not (video_dir / video).is_file():
            raise DatasetError(f"{path}: unknown video id {video!r} (no {video_dir / video})")
        parts.sort(key=lambda p: p[0][0])
        sentences = [s for _, s in parts]
        vid = Path(video).stem
        out.append(
            Paragraph(vid, "video", video_dir / video, split, [" ".join(sentences), *sentences], [w for w, _ in parts])
        )
    return out


def _didemo_entry(path: Path, i: int, entry: object) -> tuple[str, str, list[float]]:
    """(video file, sentence, window in seconds) of entry ``i``; raises DatasetError naming it."""
    if not isinstance(entry, dict) or not isinstance(entry.get("video"), str):
        raise DatasetError(f"{path}: entry {i} has no video")
    desc = str(entry.get("description", "")).strip()
    if not desc:
        raise DatasetError(f"{path}: entry {i} ({entry['video']}) has an empty description")
    times = entry.get("times")
    if not isinstance(times, list) or not times or any(not isinstance(t, list) or len(t) != 2 for t in times):
        raise DatasetError(f"{path}: entry {i} ({entry['video']}) has no [first, last] segment times")
    first = float(np.median([t[0] for t in times]))  # annotators disagree; their median (ours)
    last = float(np.median([t[1] for t in times]))
    return entry["video"], desc, [first * DIDEMO_SEGMENT_S, (last + 1) * DIDEMO_SEGMENT_S]


def require_captions(samples: list[Sample], source: Path) -> list[Sample]:
    """``samples`` unchanged, or DatasetError naming the first video with an empty caption list."""
    for s in samples:
        if not s.captions:
            raise DatasetError(f"{source}: video {s.id!r} has an empty caption list")
    return samples
