"""ONNX export of a moment head as two or three graphs, checked against torch on videos of different lengths.

bundle.MOMENT_QUERY: MOMENT_QUERY_INPUTS (input_ids, attention_mask (B, L) int64) -> sentence (B, E) and the
head's query side (``MomentHead.query_side``: by default tokens (B, L, E); cdnet's projections of both):
the frozen query tower and everything that depends on the query alone, run once per request.
bundle.MOMENT_CLIPS, for a head with a clip side (``MomentHead.clip_side``; cdnet): clips (N, E) -> per-clip
tensors (N, ...), run over every clip once when the bundle is built (bundle.write_clip_side).
bundle.MOMENT_HEAD: the query side's and the clip side's tensors by name + WINDOW_FEEDS (attention_mask,
clips (B, T, E) float32, clip_mask (B, T) int64) -> MOMENT_HEAD_OUTPUTS (spans (B, Q, 2), span_scores (B, Q),
saliency (B, T)), run on every clip window of every video (bundle/moment_graphs.py runs them). Batch, tokens
and clips are dynamic. Traced on one shape and checked, end to end (clip graph, query graph, then head
graph), on another (more videos, longer and padded), so a length baked into any graph fails the check.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bundle import (
    MOMENT_CLIPS,
    MOMENT_CLIPS_INPUT,
    MOMENT_HEAD,
    MOMENT_HEAD_OUTPUTS,
    MOMENT_QUERY,
    MOMENT_QUERY_INPUTS,
    MOMENT_QUERY_SENTENCE,
    TOKENIZER,
    WINDOW_FEEDS,
)
from bundle.moment_graphs import contract_errors, run_clips, run_query, run_windows
from models.moments.batching import inputs
from models.moments.common import MomentHead
from models.moments.heads import load_head
from xmr.errors import XmrError

log = logging.getLogger(__name__)

OPSET = 17
TRACE_TEXTS = ["a red 7 moves left", "a green 1 appears"]
CHECK_TEXTS = ["a blue 3 moves up", "x", "a yellow 9 moves down and a red 2 appears"]


class ExportMismatch(XmrError):
    """The exported moment head disagrees with torch beyond the tolerance."""


def seeded_clips(lengths: list[int], dim: int, seed: int) -> list[np.ndarray]:
    """Unit-norm random clip features, one (T_i, dim) array per length."""
    rng = np.random.default_rng(seed)
    out = []
    for t in lengths:
        x = rng.standard_normal((t, dim)).astype(np.float32)
        out.append(x / np.linalg.norm(x, axis=1, keepdims=True))
    return out


class _Query(nn.Module):
    """The query graph: the frozen text tower, then the head's query side (``MomentHead.query_side``)."""

    def __init__(self, head: MomentHead, names: list[str]) -> None:
        super().__init__()
        self.head, self.names = head, names

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        sentence, tokens = self.head.text(input_ids, attention_mask)
        out = {MOMENT_QUERY_SENTENCE: sentence} | self.head.query_side(sentence, tokens, attention_mask)
        return tuple(out[n] for n in self.names)


class _Clips(nn.Module):
    """The clip graph: the head's clip side (``MomentHead.clip_side``) of (N, E) clips."""

    def __init__(self, head: MomentHead, names: list[str]) -> None:
        super().__init__()
        self.head, self.names = head, names

    def forward(self, clips: torch.Tensor) -> tuple[torch.Tensor, ...]:
        side = self.head.clip_side(clips)
        return tuple(side[n] for n in self.names)


class _Windows(nn.Module):
    """The window graph: the head's window stage (``MomentHead.localize_windows``) on the query side's and the
    clip side's tensors."""

    def __init__(self, head: MomentHead, names: list[str], side: list[str]) -> None:
        super().__init__()
        self.head, self.names, self.side = head, names, side

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        *rest, attention_mask, clips, clip_mask = args
        query, side = rest[: len(self.names)], rest[len(self.names) :]
        return self.head.localize_windows(
            dict(zip(self.names, query, strict=True)),
            attention_mask,
            clips,
            clip_mask,
            dict(zip(self.side, side, strict=True)) if self.side else None,
        )


@torch.no_grad()
def query_axes(head: MomentHead, tok: Any) -> tuple[dict[str, dict[int, str]], list[str]]:
    """Each query graph output's dynamic axes ({0: "batch"}, and 1: "tokens" where it has one per token),
    found by running the query side on two batches that differ in size and token count, and the names
    of the query side's own tensors (the window graph's query inputs; the sentence only if among them)."""
    shapes, side_names = [], []
    for texts in (TRACE_TEXTS, CHECK_TEXTS):
        b = inputs(tok, texts, seeded_clips([2] * len(texts), head.dim, 0))
        sentence, tokens = head.text(b["input_ids"], b["attention_mask"])
        side = head.query_side(sentence, tokens, b["attention_mask"])
        out = {MOMENT_QUERY_SENTENCE: sentence} | side
        shapes.append(({k: tuple(v.shape) for k, v in out.items()}, b["input_ids"].shape))
        side_names = list(side)
    (one, (b1, l1)), (two, (b2, l2)) = shapes
    axes: dict[str, dict[int, str]] = {}
    for name, s1 in one.items():
        s2, ax = two[name], {}
        for i, (d1, d2) in enumerate(zip(s1, s2, strict=True)):
            if (d1, d2) == (b1, b2) and i == 0:
                ax[i] = "batch"
            elif (d1, d2) == (l1, l2):
                ax[i] = "tokens"
            elif d1 != d2:
                raise ExportMismatch(f"query-side output {name!r}: axis {i} varies ({d1} vs {d2}) unlike batch/tokens")
        if ax.get(0) != "batch":
            raise ExportMismatch(f"query-side output {name!r} {s1} is not batch-first")
        axes[name] = ax
    return axes, side_names


def export_onnx(head: MomentHead, tok: Any, out_dir: Path, atol: float = 1e-4) -> float:
    """Write ``head`` as ``out_dir/MOMENT_QUERY`` + ``out_dir/MOMENT_HEAD`` (+ ``out_dir/MOMENT_CLIPS`` for a head
    with a clip side); return max |onnx - torch| over all outputs (valid clips) of the graphs run in a row."""
    head = head.cpu().eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    example = inputs(tok, TRACE_TEXTS, seeded_clips([24, 17], head.dim, 0))
    ids, mask = example["input_ids"], example["attention_mask"]
    tokens = {0: "batch", 1: "tokens"}
    q_axes, window_names = query_axes(head, tok)
    names = list(q_axes)  # sentence first, then the head's query-side tensors
    torch.onnx.export(
        _Query(head, names).eval(),
        (ids, mask),
        str(out_dir / MOMENT_QUERY),
        dynamo=False,
        input_names=list(MOMENT_QUERY_INPUTS),
        output_names=names,
        opset_version=OPSET,
        dynamic_axes={"input_ids": tokens, "attention_mask": tokens} | q_axes,
    )
    with torch.no_grad():
        outputs = dict(zip(names, _Query(head, names).eval()(ids, mask), strict=True))
    query = tuple(outputs[n] for n in window_names)
    with torch.no_grad():
        side = head.clip_side(example["clips"])  # (B, T, ...) per name
    side_names = list(side)
    (out_dir / MOMENT_CLIPS).unlink(missing_ok=True)  # a head without a clip side leaves none behind
    if side_names:
        flat = example["clips"].flatten(0, 1)  # the clip graph sees (N, E): every clip of the bundle
        torch.onnx.export(
            _Clips(head, side_names).eval(),
            (flat,),
            str(out_dir / MOMENT_CLIPS),
            dynamo=False,
            input_names=[MOMENT_CLIPS_INPUT],
            output_names=side_names,
            opset_version=OPSET,
            dynamic_axes={MOMENT_CLIPS_INPUT: {0: "clips"}} | {n: {0: "clips"} for n in side_names},
        )
    axes = {n: q_axes[n] for n in window_names} | {"attention_mask": tokens}
    axes |= {n: {0: "batch", 1: "clips"} for n in (*side_names, "clips", "clip_mask")}
    axes |= {"spans": {0: "batch"}, "span_scores": {0: "batch"}, "saliency": {0: "batch", 1: "clips"}}
    torch.onnx.export(
        _Windows(head, window_names, side_names).eval(),  # export restores the module's mode afterwards: a
        # train-mode wrapper would leave the head in train mode (dropout on) for the check below
        (*query, *(side[n] for n in side_names), mask, example["clips"], example["clip_mask"]),
        str(out_dir / MOMENT_HEAD),
        dynamo=False,
        input_names=[*window_names, *side_names, *WINDOW_FEEDS],  # inputs the window stage ignores are pruned
        output_names=list(MOMENT_HEAD_OUTPUTS),
        opset_version=OPSET,
        dynamic_axes=axes,
    )
    err = max_abs_diff(head, tok, out_dir)
    if not err <= atol:
        raise ExportMismatch(f"{out_dir}: ONNX moment head differs from torch by {err:.2e} (> {atol:.0e})")
    return err


def run_graphs(query: Any, windows: Any, feeds: dict[str, np.ndarray], clips: Any = None) -> list[np.ndarray]:
    """The ONNX Runtime sessions in a row on forward inputs (names as MOMENT_QUERY_INPUTS + clips, clip_mask):
    the clip graph (``clips``, if the head has one) on every clip, as the indexer runs it, then what the
    service computes per request (bundle.moment_graphs), for the export check and the tests."""
    if errors := contract_errors(query, windows, clips):
        raise ExportMismatch("; ".join(errors))
    b, t, e = feeds["clips"].shape
    flat = run_clips(clips, feeds["clips"].reshape(b * t, e)) if clips is not None else {}
    side = run_query(query, feeds["input_ids"], feeds["attention_mask"])
    clip_side = {k: v.reshape(b, t, *v.shape[1:]) for k, v in flat.items()}
    return run_windows(windows, side, feeds["clips"], feeds["clip_mask"], clip_side)


@torch.no_grad()
def max_abs_diff(head: MomentHead, tok: Any, out_dir: Path, seed: int = 1) -> float:
    """max |onnx - torch| on 3 videos of 61, 30 and 5 clips (padded to 61), both graphs in a row."""
    import onnxruntime as ort

    head.eval()
    batch = inputs(tok, CHECK_TEXTS, seeded_clips([61, 30, 5], head.dim, seed))
    query, windows, clips = (
        ort.InferenceSession(str(out_dir / name), providers=["CPUExecutionProvider"])
        if (out_dir / name).is_file()
        else None
        for name in (MOMENT_QUERY, MOMENT_HEAD, MOMENT_CLIPS)
    )
    got = run_graphs(query, windows, {k: v.numpy() for k, v in batch.items()}, clips)
    want = [o.numpy() for o in head(**batch)]
    return float(max(np.abs(g - w).max() for g, w in zip(got, want, strict=True)))


def export_moment_head(run_dir: Path, out_dir: Path, atol: float = 1e-4) -> dict[str, Any]:
    """Export ``run_dir/moments`` to ``out_dir/MOMENT_QUERY`` + ``out_dir/MOMENT_HEAD`` (+ MOMENT_CLIPS); return
    the bundle manifest entry ``{"name", "span_clips", "clip_rate", "onnx_max_abs_diff", "query_graph"}`` (+
    ``"clip_graph"``: the indexer then runs it over the bundle's clips and adds ``"clip_side"``).
    ``NoMomentHead`` when the run has none,
    ``ExportMismatch`` when ONNX Runtime and torch differ by more than ``atol``."""
    from models.tokenizer import load_tokenizer

    head = load_head(run_dir)
    tok = load_tokenizer(run_dir / TOKENIZER)
    err = export_onnx(head, tok, out_dir, atol)
    cfg = head.cfg
    name = str(cfg.get("config", cfg["head"]))  # the config trained (cdnet_serve is a size of cdnet)
    log.info("exported the %s moment head to %s (max |onnx - torch| = %.2e)", name, out_dir / MOMENT_HEAD, err)
    return {
        "name": name,
        "span_clips": int(cfg["span_clips"]),
        "clip_rate": float(cfg["clip_rate"]),
        "onnx_max_abs_diff": err,
        "query_graph": MOMENT_QUERY,
        **({"clip_graph": MOMENT_CLIPS} if (out_dir / MOMENT_CLIPS).is_file() else {}),
    }
