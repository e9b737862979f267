"""Moment data readers: QVHighlights jsonl, Charades-STA lines, the Moment-DETR feature layout, raw mp4.

- QVHighlights (``highlight_{split}_release.jsonl``, and the demo's ``moments_{split}.jsonl``): one json
  object a line with ``qid, query, vid, duration, relevant_windows`` ([[start, end], ...] seconds),
  ``relevant_clip_ids`` and ``saliency_scores`` (3 annotators, 0-4, on 2-s clips). Test files without
  windows are read with empty windows.
- Charades-STA (``charades_sta_{train,test}.txt``): ``vid start end##sentence`` a line, seconds. Durations
  come from elsewhere (Charades' csv); given them, windows beyond the video and unknown videos are refused.
- Moment-DETR features: ``{vid}.npz`` with ``features`` (clips, dim) and ``qid{qid}.npz`` with the query's
  token features (``last_hidden_state`` in their release, or ``features``).
- Raw mp4: ``<data>/manifest.jsonl`` names each video's file (``id``, ``uri``); else ``<data>/videos/{vid}.mp4``.

Every refusal is a ``MomentDataError`` naming the file, the line (1-based) and the reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xmr.errors import ManifestError

GT_CLIP_S = 2.0  # seconds per clip of relevant_clip_ids / saliency_scores (QVHighlights' clip_length)
EPS = 1e-3  # seconds of slack for windows that end "at" the video's end after float rounding


def relevant_clip_ids(windows: list[list[float]] | list[tuple[float, float]], duration: float) -> list[int]:
    """The ids of the GT clips (QVHighlights' grid of ``GT_CLIP_S``; whole clips only, as its evaluation reads
    them: ``int(duration / GT_CLIP_S)``) that overlap any of ``windows`` ([start, end] seconds)."""
    return [
        c
        for c in range(int(duration / GT_CLIP_S))
        if any(c * GT_CLIP_S < end and (c + 1) * GT_CLIP_S > start for start, end in windows)
    ]


class MomentDataError(ManifestError):
    """A moment annotation or feature file is malformed, inconsistent or missing."""


@dataclass
class MomentQuery:
    """One query on one video; ``windows`` [[start, end], ...] in seconds. ``row`` is the source record."""

    qid: Any
    query: str
    vid: str
    duration: float
    windows: list[list[float]]
    source: str = ""
    row: dict[str, Any] = field(default_factory=dict, repr=False)


def _check_windows(windows: list[list[float]], duration: float | None, where: str) -> None:
    for w in windows:
        if len(w) != 2:
            raise MomentDataError(f"{where}: window {w} is not [start, end]")
        if w[0] >= w[1]:
            raise MomentDataError(f"{where}: window {w}: start >= end")
        if w[0] < -EPS or (duration is not None and w[1] > duration + EPS):
            raise MomentDataError(f"{where}: window {w} outside the video (0 .. {duration} s)")


def numbered_lines(path: Path) -> Iterator[tuple[str, str]]:
    """``("<path>:<line number>", line)`` for every non-blank line of a text file; refuses a missing file."""
    if not path.is_file():
        raise MomentDataError(f"{path}: file not found")
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            yield f"{path}:{n}", line


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every non-blank line of a jsonl file as JSON; refuses a line that is not JSON, naming it."""
    rows = []
    for where, line in numbered_lines(path):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise MomentDataError(f"{where}: not json ({exc.msg})") from exc
    return rows


def read_qvhighlights(path: Path, require_windows: bool = False) -> list[MomentQuery]:
    """Read a QVHighlights jsonl file; blank lines are skipped."""
    out = []
    for where, line in numbered_lines(path):
        try:
            row = json.loads(line)
            qid, query, vid, duration = row["qid"], str(row["query"]), str(row["vid"]), float(row["duration"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise MomentDataError(f"{where}: not a QVHighlights record ({exc!r})") from exc
        windows = [[float(s), float(e)] for s, e in row.get("relevant_windows", [])]
        if require_windows and not windows:
            raise MomentDataError(f"{where}: no relevant_windows")
        _check_windows(windows, duration, where)
        if "relevant_clip_ids" in row:  # the saliency annotations, on QVHighlights' 2-s clip grid
            from models.moments.metrics import clip_ids_problem

            ids, scores = np.asarray(row["relevant_clip_ids"], int), np.asarray(row.get("saliency_scores", []), float)
            if problem := clip_ids_problem(ids, scores, int(duration / GT_CLIP_S), GT_CLIP_S):
                raise MomentDataError(f"{where}: {problem}")
        out.append(MomentQuery(qid, query, vid, duration, windows, where, row))
    return out


def read_charades_sta(path: Path, durations: dict[str, float] | None = None) -> list[MomentQuery]:
    """Read Charades-STA lines; qid is the 0-based line index among non-blank lines.

    With ``durations`` (vid -> seconds), an unknown vid or a window past the end is refused; without,
    ``duration`` is the window's end (unknown) and only the window itself is checked.
    """
    out: list[MomentQuery] = []
    for where, line in numbered_lines(path):
        head, sep, sentence = line.partition("##")
        parts = head.split()
        if not sep or len(parts) != 3 or not sentence.strip():
            raise MomentDataError(f"{where}: expected 'vid start end##sentence'")
        vid = parts[0]
        try:
            window = [float(parts[1]), float(parts[2])]
        except ValueError as exc:
            raise MomentDataError(f"{where}: start/end are not numbers") from exc
        if durations is not None and vid not in durations:
            raise MomentDataError(f"{where}: unknown vid {vid!r}")
        duration = durations[vid] if durations is not None else None
        _check_windows([window], duration, where)
        row = {"qid": len(out), "query": sentence.strip(), "vid": vid, "relevant_windows": [window]}
        out.append(MomentQuery(len(out), sentence.strip(), vid, duration or window[1], [window], where, row))
    return out


def check_vids(queries: list[MomentQuery], known: set[str]) -> None:
    """Refuse the first query whose video is not in ``known``."""
    for q in queries:
        if q.vid not in known:
            raise MomentDataError(f"{q.source}: unknown vid {q.vid!r}")


def read_video_features(feat_dir: Path, vid: str, source: str = "") -> np.ndarray:
    """``{feat_dir}/{vid}.npz``'s ``features`` as float32 (clips, dim)."""
    return _npz(feat_dir / f"{vid}.npz", ("features",), source)


def read_query_features(feat_dir: Path, qid: Any, source: str = "") -> np.ndarray:
    """``{feat_dir}/qid{qid}.npz``'s token features (``last_hidden_state`` or ``features``), float32 (L, dim)."""
    return _npz(feat_dir / f"qid{qid}.npz", ("last_hidden_state", "features"), source)


def _npz(path: Path, keys: tuple[str, ...], source: str) -> np.ndarray:
    ref = f"{source}: " if source else ""
    if not path.is_file():
        raise MomentDataError(f"{ref}missing feature file {path}")
    with np.load(path) as z:
        key = next((k for k in keys if k in z.files), None)
        if key is None:
            raise MomentDataError(f"{ref}{path} has none of the arrays {list(keys)}")
        arr = np.asarray(z[key], np.float32)
    if arr.ndim != 2 or len(arr) == 0:
        raise MomentDataError(f"{ref}{path}: {key} has shape {arr.shape}, expected (n, dim) with n > 0")
    return arr


def video_paths(data_dir: Path) -> dict[str, Path]:
    """vid -> mp4 path, from ``manifest.jsonl`` (video items) or else the files in ``videos/``."""
    manifest = data_dir / "manifest.jsonl"
    if manifest.is_file():
        rows = [json.loads(ln) for ln in manifest.read_text().splitlines() if ln.strip()]
        return {r["id"]: data_dir / r["uri"] for r in rows if r.get("modality", "video") == "video"}
    return {p.stem: p for p in sorted((data_dir / "videos").glob("*.mp4"))}


def split_file(data_dir: Path, split: str) -> Path:
    """The QVHighlights file of ``split`` under ``data_dir`` (``moments_{split}.jsonl``)."""
    return data_dir / f"moments_{split}.jsonl"
