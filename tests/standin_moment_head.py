"""A stand-in for the trained moment head: the real ones live in models/moments (the moments-models work).

``StandInMomentHead`` follows the bundle contract exactly (``bundle.MOMENT_HEAD_INPUTS`` ->
``bundle.MOMENT_HEAD_OUTPUTS``): it embeds the query with the retrieval run's own text tower, takes
each clip's cosine with it as saliency, and scores a fixed set of candidate windows (widths 1/16 .. 1/2
of the row's valid clips, starting every half width) by the mean saliency inside. It is a sliding-window
scorer over the retrieval model's text/clip similarity, so its answers are real, not random - which is
what the service-side tests (windowing, NMS, seconds mapping, batching) need to be able to fail.

``export_standin`` has the signature and return value of ``models.moments.export.export_moment_head``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import bundle

WIDTHS = (1 / 16, 1 / 8, 1 / 4, 1 / 2)
NAME = "standin_sliding_window"


def candidates(widths: tuple[float, ...] = WIDTHS) -> torch.Tensor:
    """(Q, 2) windows as fractions of a row's valid clips."""
    spans = [(s, s + w) for w in widths for s in np.arange(0.0, 1.0 - w + 1e-9, w / 2)]
    return torch.tensor(spans, dtype=torch.float32)


class StandInMomentHead(nn.Module):
    """(input_ids, attention_mask) (B, L), clips (B, T, E), clip_mask (B, T) -> spans, span_scores, saliency."""

    def __init__(self, text_tower: nn.Module) -> None:
        super().__init__()
        self.text = text_tower
        self.register_buffer("cand", candidates())

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, clips: torch.Tensor, clip_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        t = self.text(input_ids, attention_mask)  # (B, E) unit norm
        c = nn.functional.normalize(clips, dim=-1)
        m = clip_mask.to(c.dtype)  # (B, T)
        sal = (c @ t[:, :, None])[..., 0] * m  # (B, T) cosine per clip, 0 on padding
        n = m.sum(1, keepdim=True).clamp(min=1.0)  # (B, 1) valid clips
        pos = (torch.arange(c.shape[1], dtype=c.dtype)[None] + 0.5) / n  # (B, T) clip centres as fractions
        lo, hi = self.cand[None, :, 0, None], self.cand[None, :, 1, None]  # (1, Q, 1)
        inside = ((pos[:, None] >= lo) & (pos[:, None] < hi)).to(c.dtype) * m[:, None]  # (B, Q, T)
        count = inside.sum(-1)  # (B, Q)
        score = torch.where(count > 0, (inside * sal[:, None]).sum(-1) / count.clamp(min=1.0), -1.0)
        spans = self.cand[None].expand(c.shape[0], -1, -1)  # (B, Q, 2)
        return spans, score, sal


def export_standin(run_dir: Path, out_dir: Path, atol: float = 1e-4, span_clips: int = 64) -> dict[str, Any]:
    """Write ``out_dir/moment_head.onnx`` for ``run_dir``'s text tower; return the manifest's moment_head entry."""
    import onnxruntime as ort

    from models.checkpoint import load_trained

    model, tok, cfg = load_trained(run_dir)
    head = StandInMomentHead(model.text).eval()
    ids, mask = (torch.from_numpy(a) for a in _tokens(tok, ["a red 7 moves left", "a blue 3"]))
    clips = torch.randn(2, 9, int(cfg["embed_dim"]), generator=torch.Generator().manual_seed(0))
    clip_mask = torch.tensor([[1] * 9, [1] * 5 + [0] * 4])
    path = out_dir / bundle.MOMENT_HEAD
    dyn = {"input_ids": {0: "b", 1: "l"}, "attention_mask": {0: "b", 1: "l"}, "clips": {0: "b", 1: "t"}}
    dyn |= {"clip_mask": {0: "b", 1: "t"}, "spans": {0: "b"}, "span_scores": {0: "b"}, "saliency": {0: "b", 1: "t"}}
    args = (ids, mask, clips, clip_mask)
    torch.onnx.export(
        head,
        args,
        str(path),
        dynamo=False,
        input_names=list(bundle.MOMENT_HEAD_INPUTS),
        output_names=list(bundle.MOMENT_HEAD_OUTPUTS),
        opset_version=17,
        dynamic_axes=dyn,
    )
    with torch.no_grad():
        want = head(*args)
    feeds = dict(zip(bundle.MOMENT_HEAD_INPUTS, [a.numpy() for a in args], strict=True))
    got = ort.InferenceSession(str(path)).run(None, feeds)
    err = max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want, strict=True))
    assert err <= atol, err
    return {"name": NAME, "span_clips": span_clips, "clip_rate": float(cfg["clip_rate"]), "onnx_max_abs_diff": err}


def _tokens(tok: Any, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    enc = tok.encode_batch(texts)
    return np.array([e.ids for e in enc], np.int64), np.array([e.attention_mask for e in enc], np.int64)


def republish_with_head(root: Path, collection: str, run_dir: Path, span_clips: int = 64) -> Path:
    """Publish a new version of ``collection`` = its live files + a stand-in moment head; returns its path."""
    live = root / collection / str(bundle.read_current(root, collection))
    manifest = json.loads((live / bundle.MANIFEST).read_text())
    version, staging = bundle.staging_dir(root, collection)
    for f in live.iterdir():
        if f.name not in (bundle.MANIFEST, bundle.MOMENT_HEAD):
            (shutil.copytree if f.is_dir() else shutil.copy2)(f, staging / f.name)
    entry = export_standin(run_dir, staging, span_clips=span_clips)
    drop = {"schema_version", "collection", "version", "created_at", "files"}
    fields = {k: v for k, v in manifest.items() if k not in drop} | {"moment_head": entry}
    return bundle.publish(root, collection, version, staging, fields)
