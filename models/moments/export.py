"""ONNX export of a moment head as two graphs, checked against torch on videos of different lengths.

bundle.MOMENT_QUERY: MOMENT_QUERY_INPUTS (input_ids, attention_mask (B, L) int64) -> MOMENT_QUERY_OUTPUTS
(sentence (B, E), tokens (B, L, E)): the frozen query tower, run once per request.
bundle.MOMENT_HEAD: MOMENT_HEAD_INPUTS (sentence, tokens, attention_mask, clips (B, T, E) float32, clip_mask
(B, T) int64) -> MOMENT_HEAD_OUTPUTS (spans (B, Q, 2), span_scores (B, Q), saliency (B, T)), run on every
clip window of every video. Batch, tokens and clips are dynamic. Traced on one shape and checked, end to
end (query graph, then head graph), on another (more videos, longer and padded), so a length baked into
either graph fails the check.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bundle import (
    MOMENT_HEAD,
    MOMENT_HEAD_INPUTS,
    MOMENT_HEAD_OUTPUTS,
    MOMENT_QUERY,
    MOMENT_QUERY_INPUTS,
    MOMENT_QUERY_OUTPUTS,
    TOKENIZER,
)
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


class _Windows(nn.Module):
    """The head's window stage alone (``MomentHead.localize``), for tracing."""

    def __init__(self, head: MomentHead) -> None:
        super().__init__()
        self.head = head

    def forward(
        self,
        sentence: torch.Tensor,
        tokens: torch.Tensor,
        attention_mask: torch.Tensor,
        clips: torch.Tensor,
        clip_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.head.localize(sentence, tokens, attention_mask, clips, clip_mask)


def export_onnx(head: MomentHead, tok: Any, out_dir: Path, atol: float = 1e-4) -> float:
    """Write ``head`` as ``out_dir/MOMENT_QUERY`` + ``out_dir/MOMENT_HEAD``; return max |onnx - torch| over
    all outputs (valid clips) of the two graphs run in a row."""
    head = head.cpu().eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    example = inputs(tok, TRACE_TEXTS, seeded_clips([24, 17], head.dim, 0))
    ids, mask = example["input_ids"], example["attention_mask"]
    tokens = {0: "batch", 1: "tokens"}
    torch.onnx.export(
        head.text,
        (ids, mask),
        str(out_dir / MOMENT_QUERY),
        dynamo=False,
        input_names=list(MOMENT_QUERY_INPUTS),
        output_names=list(MOMENT_QUERY_OUTPUTS),
        opset_version=OPSET,
        dynamic_axes={"input_ids": tokens, "attention_mask": tokens, "sentence": {0: "batch"}, "tokens": tokens},
    )
    with torch.no_grad():
        sentence, toks = head.text(ids, mask)
    axes = {"sentence": {0: "batch"}, "tokens": tokens, "attention_mask": tokens}
    axes |= {"clips": {0: "batch", 1: "clips"}, "clip_mask": {0: "batch", 1: "clips"}}
    axes |= {"spans": {0: "batch"}, "span_scores": {0: "batch"}, "saliency": {0: "batch", 1: "clips"}}
    torch.onnx.export(
        _Windows(head).eval(),  # export restores the module's mode afterwards: a train-mode wrapper would leave
        # the head in train mode (dropout on) for the check below
        (sentence, toks, mask, example["clips"], example["clip_mask"]),
        str(out_dir / MOMENT_HEAD),
        dynamo=False,
        input_names=list(MOMENT_HEAD_INPUTS),
        output_names=list(MOMENT_HEAD_OUTPUTS),
        opset_version=OPSET,
        dynamic_axes=axes,
    )
    err = max_abs_diff(head, tok, out_dir)
    if not err <= atol:
        raise ExportMismatch(f"{out_dir}: ONNX moment head differs from torch by {err:.2e} (> {atol:.0e})")
    return err


def run_graphs(query: Any, windows: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The two ONNX Runtime sessions in a row on forward inputs (names as MOMENT_QUERY_INPUTS + clips,
    clip_mask): what the service computes, as one function for the export check and the tests."""
    sentence, tokens = query.run(list(MOMENT_QUERY_OUTPUTS), {k: feeds[k] for k in MOMENT_QUERY_INPUTS})
    every = dict(
        zip(
            MOMENT_HEAD_INPUTS,
            (sentence, tokens, feeds["attention_mask"], feeds["clips"], feeds["clip_mask"]),
            strict=True,
        )
    )
    wanted = {i.name for i in windows.get_inputs()}  # a head that ignores an input has it pruned
    return [
        np.asarray(o) for o in windows.run(list(MOMENT_HEAD_OUTPUTS), {k: v for k, v in every.items() if k in wanted})
    ]


@torch.no_grad()
def max_abs_diff(head: MomentHead, tok: Any, out_dir: Path, seed: int = 1) -> float:
    """max |onnx - torch| on 3 videos of 61, 30 and 5 clips (padded to 61), both graphs in a row."""
    import onnxruntime as ort

    head.eval()
    batch = inputs(tok, CHECK_TEXTS, seeded_clips([61, 30, 5], head.dim, seed))
    query, windows = (
        ort.InferenceSession(str(out_dir / name), providers=["CPUExecutionProvider"])
        for name in (MOMENT_QUERY, MOMENT_HEAD)
    )
    got = run_graphs(query, windows, {k: v.numpy() for k, v in batch.items()})
    want = [o.numpy() for o in head(**batch)]
    return float(max(np.abs(g - w).max() for g, w in zip(got, want, strict=True)))


def export_moment_head(run_dir: Path, out_dir: Path, atol: float = 1e-4) -> dict[str, Any]:
    """Export ``run_dir/moments`` to ``out_dir/MOMENT_QUERY`` + ``out_dir/MOMENT_HEAD``; return the bundle
    manifest entry ``{"name", "span_clips", "clip_rate", "onnx_max_abs_diff", "query_graph"}``.
    ``NoMomentHead`` when the run has none,
    ``ExportMismatch`` when ONNX Runtime and torch differ by more than ``atol``."""
    from models.tokenizer import load_tokenizer

    head = load_head(run_dir)
    tok = load_tokenizer(run_dir / TOKENIZER)
    err = export_onnx(head, tok, out_dir, atol)
    log.info("exported %s head to %s (max |onnx - torch| = %.2e)", head.cfg["head"], out_dir / MOMENT_HEAD, err)
    cfg = head.cfg
    return {
        "name": str(cfg.get("config", cfg["head"])),  # the config trained (cdnet_serve is a size of cdnet)
        "span_clips": int(cfg["span_clips"]),
        "clip_rate": float(cfg["clip_rate"]),
        "onnx_max_abs_diff": err,
        "query_graph": MOMENT_QUERY,
    }
