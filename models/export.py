"""ONNX export of the text encoder, checked against torch on a test batch."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import nn

from bundle import TEXT_ENCODER, TEXT_ENCODER_INPUTS, TEXT_ENCODER_OUTPUT, TOKENIZER
from models.tokenizer import encode
from xmr.errors import ExportError

log = logging.getLogger(__name__)

OPSET = 17
CHECK_TEXTS = ["a red 7 moves left", "a blue 3 appears, then a green 1 moves up", "x", "a yellow 9 moves down"]


class _TextGraph(nn.Module):
    """The exported graph: (input_ids, attention_mask) (B, L) int64 -> embeddings (B, E) float32."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(input_ids=input_ids, attention_mask=attention_mask)


def export_text_encoder(model: Any, tok: Tokenizer, out_dir: Path, atol: float = 1e-4) -> float:
    """Write the bundle's text encoder graph and tokenizer into ``out_dir``; return max |onnx - torch|.

    Raises ``ExportError`` when ONNX Runtime and torch disagree by more than ``atol``.
    The model is moved to the CPU (export and the check run there) and left in eval mode.
    """
    model.cpu()
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / TEXT_ENCODER
    graph = _TextGraph(model).eval()  # the wrapper too: the exporter restores its mode recursively afterwards
    ids, mask = encode(tok, CHECK_TEXTS)
    torch.onnx.export(
        graph,
        (torch.from_numpy(ids), torch.from_numpy(mask)),
        str(onnx_path),
        dynamo=False,
        input_names=list(TEXT_ENCODER_INPUTS),
        output_names=[TEXT_ENCODER_OUTPUT],
        opset_version=OPSET,
        dynamic_axes={
            **{name: {0: "batch", 1: "tokens"} for name in TEXT_ENCODER_INPUTS},
            TEXT_ENCODER_OUTPUT: {0: "batch"},
        },
    )
    tok.save(str(out_dir / TOKENIZER))
    err = max_abs_diff(model, tok, onnx_path, CHECK_TEXTS)
    if err > atol:
        raise ExportError(f"{onnx_path}: ONNX text encoder differs from torch by {err:.2e} (> atol {atol:.0e})")
    log.info("exported %s (max |onnx - torch| = %.2e)", onnx_path, err)
    return err


@torch.no_grad()
def max_abs_diff(model: Any, tok: Tokenizer, onnx_path: Path, texts: list[str]) -> float:
    import onnxruntime as ort

    ids, mask = encode(tok, texts)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run([TEXT_ENCODER_OUTPUT], dict(zip(TEXT_ENCODER_INPUTS, (ids, mask), strict=True)))[0]
    want = model.encode_text(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    return float(np.abs(got - want).max())
