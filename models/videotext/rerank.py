"""ONNX export of a token-level model's pair score (ProTA) as the bundle's re-ranking graph.

The graph holds the text tower and the scorer: (query ids, mask) + candidates' per-frame video
tokens -> one score per (query, candidate). The video tokens are what the indexer already stores
per video (the bundle's clips/), so the service re-scores the FAISS top candidates with ONNX
Runtime and numpy alone. Checked against torch within ``atol`` on random candidates.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import nn

from bundle import RERANK, RERANK_INPUTS, RERANK_OUTPUT
from models.export import CHECK_TEXTS, OPSET
from models.tokenizer import encode
from xmr.errors import ExportError

log = logging.getLogger(__name__)


class _RerankGraph(nn.Module):
    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, clips: torch.Tensor, clip_mask: torch.Tensor
    ) -> torch.Tensor:
        return self.model.pair_scores(input_ids, attention_mask, clips, clip_mask)


def check_inputs(model: Any, tok: Tokenizer, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Queries + 5 random unit-norm candidates of 1..6 frames (padding included) for the checks."""
    ids, mask = encode(tok, CHECK_TEXTS)
    rng = np.random.default_rng(seed)
    clips = rng.standard_normal((5, 6, model.cfg["embed_dim"])).astype(np.float32)
    clips /= np.linalg.norm(clips, axis=-1, keepdims=True)
    clip_mask = (np.arange(6)[None] < np.array([6, 1, 3, 4, 6])[:, None]).astype(np.int64)
    return ids, mask, clips, clip_mask


def export_rerank(model: Any, tok: Tokenizer, out_dir: Path, atol: float = 1e-4) -> float:
    """Write ``rerank.onnx`` into ``out_dir``; return max |onnx - torch| (ExportError above ``atol``)."""
    model.cpu().eval()
    path = out_dir / RERANK
    inputs = check_inputs(model, tok)
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}}
    axes |= {"clips": {0: "candidates", 1: "frames"}, "clip_mask": {0: "candidates", 1: "frames"}}
    torch.onnx.export(
        _RerankGraph(model).eval(),
        tuple(torch.from_numpy(a) for a in inputs),
        str(path),
        dynamo=False,
        input_names=list(RERANK_INPUTS),
        output_names=[RERANK_OUTPUT],
        opset_version=OPSET,
        dynamic_axes={**axes, RERANK_OUTPUT: {0: "batch", 1: "candidates"}},
    )
    err = max_abs_diff(model, path, inputs)
    if err > atol:
        raise ExportError(f"{path}: ONNX re-ranker differs from torch by {err:.2e} (> atol {atol:.0e})")
    log.info("exported %s (max |onnx - torch| = %.2e)", path, err)
    return err


@torch.no_grad()
def max_abs_diff(model: Any, path: Path, inputs: tuple[np.ndarray, ...]) -> float:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run([RERANK_OUTPUT], dict(zip(RERANK_INPUTS, inputs, strict=True)))[0]
    want = model.pair_scores(*(torch.from_numpy(a) for a in inputs)).numpy()
    return float(np.abs(got - want).max())
