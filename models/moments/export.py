"""ONNX export of a moment head (bundle.MOMENT_HEAD), checked against torch on videos of different lengths.

The graph: MOMENT_HEAD_INPUTS (input_ids (B, L) int64, attention_mask (B, L) int64, clips (B, T, E) float32,
clip_mask (B, T) int64) -> MOMENT_HEAD_OUTPUTS (spans (B, Q, 2), span_scores (B, Q), saliency (B, T)), with
batch, tokens and clips dynamic. Traced on one shape and checked on another (more videos, longer and
padded), so a length baked into the graph fails the check.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bundle import MOMENT_HEAD, MOMENT_HEAD_INPUTS, MOMENT_HEAD_OUTPUTS, TOKENIZER
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


def export_onnx(head: MomentHead, tok: Any, path: Path, atol: float = 1e-4) -> float:
    """Write ``head`` as ONNX at ``path``; return max |onnx - torch| over all outputs (valid clips)."""
    head = head.cpu().eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    example = inputs(tok, TRACE_TEXTS, seeded_clips([24, 17], head.dim, 0))
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}}
    axes |= {"clips": {0: "batch", 1: "clips"}, "clip_mask": {0: "batch", 1: "clips"}}
    axes |= {"spans": {0: "batch"}, "span_scores": {0: "batch"}, "saliency": {0: "batch", 1: "clips"}}
    torch.onnx.export(
        head,
        tuple(example[k] for k in MOMENT_HEAD_INPUTS),
        str(path),
        dynamo=False,
        input_names=list(MOMENT_HEAD_INPUTS),
        output_names=list(MOMENT_HEAD_OUTPUTS),
        opset_version=OPSET,
        dynamic_axes=axes,
    )
    err = max_abs_diff(head, tok, path)
    if not err <= atol:
        raise ExportMismatch(f"{path}: ONNX moment head differs from torch by {err:.2e} (> {atol:.0e})")
    return err


@torch.no_grad()
def max_abs_diff(head: MomentHead, tok: Any, path: Path, seed: int = 1) -> float:
    """max |onnx - torch| on 3 videos of 61, 30 and 5 clips (padded to 61)."""
    import onnxruntime as ort

    batch = inputs(tok, CHECK_TEXTS, seeded_clips([61, 30, 5], head.dim, seed))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(list(MOMENT_HEAD_OUTPUTS), {k: batch[k].numpy() for k in MOMENT_HEAD_INPUTS})
    want = [o.numpy() for o in head(**batch)]
    return float(max(np.abs(g - w).max() for g, w in zip(got, want, strict=True)))


def export_moment_head(run_dir: Path, out_dir: Path, atol: float = 1e-4) -> dict[str, Any]:
    """Export ``run_dir/moments`` to ``out_dir/MOMENT_HEAD``; return the bundle manifest entry
    ``{"name", "span_clips", "clip_rate", "onnx_max_abs_diff"}``. ``NoMomentHead`` when the run has none,
    ``ExportMismatch`` when ONNX Runtime and torch differ by more than ``atol``."""
    from models.tokenizer import load_tokenizer

    head = load_head(run_dir)
    tok = load_tokenizer(run_dir / TOKENIZER)
    err = export_onnx(head, tok, out_dir / MOMENT_HEAD, atol)
    log.info("exported %s head to %s (max |onnx - torch| = %.2e)", head.cfg["head"], out_dir / MOMENT_HEAD, err)
    cfg = head.cfg
    return {
        "name": cfg["head"],
        "span_clips": int(cfg["span_clips"]),
        "clip_rate": float(cfg["clip_rate"]),
        "onnx_max_abs_diff": err,
    }
