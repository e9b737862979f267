"""Moment localization: the bundle's moment head (ONNX Runtime) over its memory-mapped clip features.

A video of at most ``span_clips`` clips (the longest window the head handles) is one window. A longer
one is cut into windows of ``span_clips`` clips starting every ``span_clips // 2`` clips, so any event
up to half a span long lies whole inside some window. Each window's spans are mapped to the video's
own seconds and all windows' spans are merged by score-aware non-maximum suppression; per-clip
saliency is the mean over the windows covering the clip. Windows run in chunks of at most
``MAX_WINDOWS`` rows and only a chunk's clips are read from the memory map (one gather per chunk), so
memory stays bounded whatever the video's length (design ours: the head's papers score one pre-cut video of <= 150 s).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from bundle import (
    LEGACY_MOMENT_HEAD_INPUTS,
    MOMENT_HEAD,
    MOMENT_QUERY,
    MOMENT_QUERY_SENTENCE,
    TOKENIZER,
    ClipStore,
    moment_head_entry,
)
from bundle.moment_graphs import contract_errors, run_query, run_windows
from service.encoder import providers as session_providers
from xmr.errors import BundleError

MAX_WINDOWS = 256  # windows per ONNX call: (256, span, E) float32 is a few MB at span 64, E 64
NMS_IOU = 0.5  # spans overlapping a better one by more than this are the same moment
SMALL_NMS = 96  # NMS over at most this many candidates runs in plain floats (faster below ~100, slower above)


@dataclass(frozen=True)
class Span:
    """A window of a video in seconds, ``start < end``, with the head's score."""

    start: float
    end: float
    score: float


@dataclass(frozen=True)
class Localized:
    """One video's moments (best first) and per-clip saliency (T,); clip i covers [i/rate, (i+1)/rate) s."""

    moments: list[Span]
    saliency: np.ndarray
    clip_rate: float
    duration: float


def windows(n_clips: int, span: int) -> list[tuple[int, int]]:
    """Half-open clip windows ``[a, b)`` of ``span`` clips every ``span // 2`` clips covering ``[0, n_clips)``.

    A video of at most ``span`` clips is one window; the last window ends exactly at ``n_clips``.
    """
    if n_clips <= span:
        return [(0, n_clips)]
    stride = max(1, span // 2)
    starts = list(range(0, n_clips - span, stride)) + [n_clips - span]
    return [(a, a + span) for a in starts]


def windows_near(n_clips: int, span: int, focus: tuple[float, float] | None, rate: float) -> list[tuple[int, int]]:
    """``windows(n_clips, span)`` that overlap ``focus`` (seconds), or all of them when ``focus`` is None.

    A search hit on a long video carries the segment that matched; its moments come from the head's
    windows around that segment only (a 2-hour hit costs two or three windows, not fifty).
    """
    every = windows(n_clips, span)
    if focus is None:
        return every
    lo, hi = focus[0] * rate, focus[1] * rate  # clips
    near = [(a, b) for a, b in every if a < hi and b > lo]
    return near or every


def temporal_iou(span: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of one (2,) span with each of (N, 2) spans (any unit; lengths > 0)."""
    inter = np.minimum(span[1], others[:, 1]) - np.maximum(span[0], others[:, 0])  # (N,), < 0: disjoint
    np.maximum(inter, 0.0, out=inter)
    union = (span[1] - span[0]) + (others[:, 1] - others[:, 0]) - inter
    iou: np.ndarray = inter / np.maximum(union, 1e-9)
    return iou


def nms(spans: np.ndarray, scores: np.ndarray, k: int, iou: float = NMS_IOU) -> list[int]:
    """Indices of at most ``k`` spans (N, 2), best score first, none overlapping a kept one by IoU > ``iou``.

    Greedy: the best remaining span is kept and every span it overlaps by more than ``iou`` is dropped.
    Equal scores go to the earlier start (stable), so results do not depend on window order. Up to
    ``SMALL_NMS`` candidates run in plain floats; a long video's thousands cost one O(N) array pass per
    kept span instead.
    """
    order: list[int] = np.lexsort((spans[:, 0], -scores)).tolist()  # by score desc, then start asc
    if len(order) <= SMALL_NMS:  # a short video: plain floats beat numpy's per-call overhead
        return _greedy_floats(spans.tolist(), order, k, iou)
    dropped = np.zeros(len(spans), bool)
    kept: list[int] = []
    for i in order:
        if dropped[i]:
            continue
        kept.append(i)
        if len(kept) == k:
            break
        dropped |= temporal_iou(spans[i], spans) > iou  # includes i itself (IoU 1)
    return kept


def _greedy_floats(spans: list[list[float]], order: list[int], k: int, iou: float) -> list[int]:
    """``nms`` on a few candidates: each is checked against the (at most k) kept ones, in floats."""
    kept: list[int] = []
    for i in order:
        s, e = spans[i]
        if all(_iou(s, e, *spans[j]) <= iou for j in kept):
            kept.append(i)
            if len(kept) == k:
                break
    return kept


def _iou(s: float, e: float, s2: float, e2: float) -> float:
    inter = min(e, e2) - max(s, s2)
    return 0.0 if inter <= 0 else inter / max((e - s) + (e2 - s2) - inter, 1e-9)


def video_end(n_clips: int, duration: float, clip_rate: float) -> float:
    """Seconds where a video's moments must end: its duration, or its clips' end if shorter or unknown."""
    return min(duration, n_clips / clip_rate) if duration > 0 else n_clips / clip_rate


def to_seconds(spans: np.ndarray, starts: np.ndarray, lengths: np.ndarray, rate: float, ends: np.ndarray) -> np.ndarray:
    """(B, Q, 2) fractions of each window's ``lengths`` clips, windows starting at clip ``starts`` (B,),
    -> (B, Q, 2) seconds of the video, ordered (start, end) and clipped to [0, ``ends`` (B,)]."""
    secs = (starts[:, None, None] + spans.astype(np.float64) * lengths[:, None, None]) / rate
    secs.sort(axis=2)  # a head may emit (end, start); a window is the interval either way
    clipped: np.ndarray = np.minimum(np.maximum(secs, 0.0), ends[:, None, None])
    return clipped


class MomentHead:
    """Loaded once per bundle: the query graph (``moment_query.onnx``) and the window graph
    (``moment_head.onnx``), the tokenizer and the clip store (memory-mapped).

    A request runs the query graph once and the window graph on all its windows, the query graph's
    outputs repeated per window (bundle/moment_graphs.py), with the windows' rows of the head's clip side
    (schema 6: computed by the clip graph when the bundle was built, memory-mapped like the clips). A
    bundle built before the split (its entry names no ``query_graph``) has one graph taking the query's ids,
    which then runs the text tower per window.
    """

    def __init__(self, bundle_dir: Path, entry: dict[str, Any], threads: int = 1) -> None:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        providers = session_providers()
        self.path = bundle_dir / MOMENT_HEAD
        self.session = ort.InferenceSession(str(self.path), sess_options=opts, providers=providers)
        self.query: ort.InferenceSession | None = None
        side = list(entry.get("clip_side", []))  # the clip graph's outputs, stored when the bundle was built
        if entry.get("query_graph"):
            self.query = ort.InferenceSession(str(bundle_dir / MOMENT_QUERY), sess_options=opts, providers=providers)
            if errors := contract_errors(self.query, self.session, clip_side=side):
                raise BundleError(f"{self.path}: the moment graphs do not fit together: {'; '.join(errors)}")
        self.tokenizer = Tokenizer.from_file(str(bundle_dir / TOKENIZER))
        self.clips = ClipStore(bundle_dir, side)
        self.name = str(entry["name"])
        self.span = int(entry["span_clips"])
        self.clip_rate = float(entry["clip_rate"])
        self.shares_encoder = False  # set by ``check_shares``
        self._probe()

    def check_shares(self, encode: Callable[[list[str]], np.ndarray], atol: float = 1e-5) -> bool:
        """Whether the query graph's sentence vector is the search embedding (``encode``, the bundle's text
        encoder) on a few probe texts: the head's tower is a frozen copy of the run's text tower, so it is
        unless the bundle mixes runs. When it is, a search with moments runs the text tower once for both."""
        if self.query is None:
            return False
        texts = ["a probe query", "a red 7 moves left, then a blue 3 appears", "x"]
        got = np.concatenate([self.encode_query(t)[MOMENT_QUERY_SENTENCE] for t in texts])
        self.shares_encoder = bool(np.abs(got - encode(texts)).max() <= atol)
        return self.shares_encoder

    def _probe(self) -> None:
        """Run the head once on zeros: warms the session and proves it accepts this bundle's clips."""
        dim = self.clips.features.shape[1]
        side = {k: np.ones((1, 2, *v.shape[1:]), v.dtype) for k, v in self.clips.side.items()}
        try:
            query = self.encode_query("a probe query")
            self._run(query, np.zeros((1, 2, dim), np.float32), np.ones((1, 2), np.int64), side)
        except Exception as exc:  # ORT raises its own types for shape/type mismatches
            raise BundleError(f"{self.path}: does not accept this bundle's {dim}-d clips ({exc})") from exc

    def encode_query(self, query: str) -> dict[str, np.ndarray]:
        """The query's per-request inputs of the window graph, batch 1: every output of the query graph (its
        sentence, and the head's query-side tensors) and the attention_mask; for a one-graph head, its ids
        and attention_mask."""
        enc = self.tokenizer.encode(query)
        ids, mask = np.array([enc.ids], np.int64), np.array([enc.attention_mask], np.int64)
        if self.query is None:
            return dict(zip(LEGACY_MOMENT_HEAD_INPUTS[:2], (ids, mask), strict=True))
        return run_query(self.query, ids, mask)

    def _run(
        self,
        query: dict[str, np.ndarray],
        clips: np.ndarray,
        clip_mask: np.ndarray,
        clip_side: dict[str, np.ndarray] | None = None,
    ) -> list[np.ndarray]:
        """The window graph on (B, T, E) clips (and their clip-side rows (B, T, ...)): the batch-1 query inputs
        are repeated for every window."""
        return run_windows(self.session, query, clips, clip_mask, clip_side)

    def localize(
        self,
        query: str,
        videos: list[tuple[int, float]],
        k: int,
        saliency: bool = True,
        focus: list[tuple[float, float] | None] | None = None,
        query_inputs: dict[str, np.ndarray] | None = None,
    ) -> list[Localized]:
        """The top ``k`` moments of each ``(row, duration s)`` video for ``query``, in input order.

        Every window of every video goes through the head in as few ONNX calls as ``MAX_WINDOWS``
        allows (one for a page of short hits). ``k`` beyond a video's clip count yields all there are.
        ``saliency=False`` skips merging per-clip saliency (``Localized.saliency`` is then empty).
        ``focus``: per video, the seconds to look around (a search hit's matched segment) or None for all.
        ``query_inputs``: ``encode_query(query)`` when the caller has it already.
        """
        near = focus or [None] * len(videos)
        counts = [self.clips.count(row) for row, _ in videos]
        plan = [
            (v, a, b)
            for v, (n, f) in enumerate(zip(counts, near, strict=True))
            for a, b in windows_near(n, self.span, f, self.clip_rate)
        ]
        feeds = (query_inputs or self.encode_query(query)) if plan else {}
        ends = [video_end(n, dur, self.clip_rate) for n, (_, dur) in zip(counts, videos, strict=True)]
        if not saliency and plan and len(plan) == len(videos) <= MAX_WINDOWS:  # search hits: one window each
            return self._localize_single(feeds, videos, counts, ends, plan, k)
        merge = [_Merge(n, dur, self.clip_rate, saliency) for n, (_, dur) in zip(counts, videos, strict=True)]
        for c in range(0, len(plan), MAX_WINDOWS):
            chunk = plan[c : c + MAX_WINDOWS]
            secs, scores, sal = self._score_windows(feeds, videos, ends, chunk)
            for j, (v, a, b) in enumerate(chunk):
                merge[v].add(a, b, secs[j], scores[j], sal[j, : b - a])
        return [m.result(min(k, max(m.n_clips, 1))) for m in merge]

    def _score_windows(
        self,
        feeds: dict[str, np.ndarray],
        videos: list[tuple[int, float]],
        ends: list[float],
        chunk: list[tuple[int, int, int]],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One ONNX call over ``chunk``'s ``(video, a, b)`` windows: spans in each video's seconds (B, Q, 2),
        clipped to its ``ends`` entry; scores (B, Q), -inf for a span clipped to nothing (never kept); saliency."""
        spans, scores, sal = self._run_windows(feeds, [(videos[v][0], a, b) for v, a, b in chunk])
        starts, stops = np.array([a for _, a, _ in chunk]), np.array([b for _, _, b in chunk])
        secs = to_seconds(spans, starts, stops - starts, self.clip_rate, np.array([ends[v] for v, _, _ in chunk]))
        return secs, np.where(secs[..., 1] - secs[..., 0] > 1e-6, scores, -np.inf), sal

    def _localize_single(
        self,
        feeds: dict[str, np.ndarray],
        videos: list[tuple[int, float]],
        counts: list[int],
        ends: list[float],
        plan: list[tuple[int, int, int]],
        k: int,
    ) -> list[Localized]:
        """``localize`` without saliency when every video is one window (search hits on short videos, or long
        ones focused on one window): one ONNX call, then each video's spans ranked and NMS'd in plain floats,
        with no per-video arrays. Equal to the general path (tests/service/test_moments_api.py)."""
        secs, scores, _ = self._score_windows(feeds, videos, ends, plan)
        order = np.lexsort((secs[..., 0], -scores)).tolist()  # per window: by score desc, then start asc
        out = []  # plan[v] is video v's one window
        for v, (sv, scv, ov) in enumerate(zip(secs.tolist(), scores.tolist(), order, strict=True)):
            kept = _greedy_floats(sv, ov, min(k, max(counts[v], 1)), NMS_IOU)
            found = [Span(sv[i][0], sv[i][1], scv[i]) for i in kept if scv[i] > -np.inf]
            out.append(Localized(found, _NONE, self.clip_rate, videos[v][1]))
        return out

    def _run_windows(self, query: dict[str, np.ndarray], chunk: list[tuple[int, int, int]]) -> list[np.ndarray]:
        """One ONNX call over ``(row, a, b)`` windows, clips (and clip-side rows) padded to the longest."""
        clips, clip_mask, side = self.clips.windows(chunk)
        return self._run(query, clips, clip_mask, side)


_NONE = np.zeros(0, np.float32)  # saliency that was not asked for


class _Merge:
    """Accumulates one video's window predictions in its own seconds; ``result`` applies NMS."""

    def __init__(self, n_clips: int, duration: float, clip_rate: float, saliency: bool = True) -> None:
        self.n_clips, self.clip_rate, self.duration = n_clips, clip_rate, duration
        self.spans: list[np.ndarray] = []  # each (Q, 2) seconds
        self.scores: list[np.ndarray] = []  # each (Q,); -inf for spans that lie past the video's end
        self.sal_sum = np.zeros(n_clips if saliency else 0, np.float64)
        self.sal_n = np.zeros(n_clips if saliency else 0, np.int64)

    def add(self, a: int, b: int, secs: np.ndarray, scores: np.ndarray, saliency: np.ndarray) -> None:
        """Window ``[a, b)``: spans (Q, 2) in the video's seconds, scores (Q,), saliency (b - a,)."""
        self.spans.append(secs)
        self.scores.append(scores)
        if len(self.sal_sum):
            self.sal_sum[a:b] += saliency
            self.sal_n[a:b] += 1

    def result(self, k: int) -> Localized:
        saliency = (self.sal_sum / np.maximum(self.sal_n, 1)).astype(np.float32) if len(self.sal_n) else _NONE
        if not self.spans:
            return Localized([], saliency, self.clip_rate, self.duration)
        one = len(self.spans) == 1  # a short video: one window, nothing to join
        spans = self.spans[0] if one else np.concatenate(self.spans)
        scores = self.scores[0] if one else np.concatenate(self.scores)
        kept = nms(spans, scores, k)  # -inf spans come last, so they never displace a real one
        found = [Span(float(spans[i, 0]), float(spans[i, 1]), float(scores[i])) for i in kept]
        return Localized([m for m in found if m.score > -np.inf], saliency, self.clip_rate, self.duration)


def load_moment_head(bundle_dir: Path, manifest: dict[str, Any], threads: int = 1) -> MomentHead | None:
    """The bundle's moment head, or None when it has none (search still serves; /v1/moments says why not)."""
    entry = moment_head_entry(bundle_dir, manifest)
    return None if entry is None else MomentHead(bundle_dir, entry, threads)
