"""A stand-in for the trained moment head: the real ones live in models/moments (the moments-models work).

``StandInMomentHead`` follows the bundle contract exactly (``bundle.MOMENT_QUERY`` then
``bundle.MOMENT_HEAD``, or with ``legacy=True`` the one graph of schema-3 bundles,
``bundle.LEGACY_MOMENT_HEAD_INPUTS`` -> ``bundle.MOMENT_HEAD_OUTPUTS``): it embeds the query with the
retrieval run's own text tower, takes
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
from models.moments.export import run_graphs  # at import: tests replace models.moments.export by this module

WIDTHS = (1 / 16, 1 / 8, 1 / 4, 1 / 2)
NAME = "standin_sliding_window"


def candidates(widths: tuple[float, ...] = WIDTHS) -> torch.Tensor:
    """(Q, 2) windows as fractions of a row's valid clips."""
    spans = [(s, s + w) for w in widths for s in np.arange(0.0, 1.0 - w + 1e-9, w / 2)]
    return torch.tensor(spans, dtype=torch.float32)


class StandInQuery(nn.Module):
    """(input_ids, attention_mask) -> sentence (B, E) unit norm, tokens (B, L, E) (the sentence per token:
    the stand-in has no token features, and a real query graph's outputs have these shapes)."""

    def __init__(self, text_tower: nn.Module) -> None:
        super().__init__()
        self.text = text_tower

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = self.text(input_ids, attention_mask)  # (B, E)
        return t, t[:, None] * attention_mask[..., None].to(t.dtype)


class StandInWindows(nn.Module):
    """sentence (B, E), clips (B, T, E), clip_mask (B, T) -> spans, span_scores, saliency."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("cand", candidates())

    def forward(
        self,
        sentence: torch.Tensor,
        tokens: torch.Tensor,
        attention_mask: torch.Tensor,
        clips: torch.Tensor,
        clip_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        t = sentence
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


class StandInMomentHead(nn.Module):
    """The two stages in a row: (input_ids, attention_mask, clips, clip_mask) -> spans, span_scores, saliency."""

    def __init__(self, text_tower: nn.Module) -> None:
        super().__init__()
        self.query, self.windows = StandInQuery(text_tower), StandInWindows()

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, clips: torch.Tensor, clip_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.windows(*self.query(input_ids, attention_mask), attention_mask, clips, clip_mask)


def _export(
    module: nn.Module, args: tuple[torch.Tensor, ...], path: Path, names: tuple[str, ...], outs: tuple[str, ...]
) -> None:
    dims = {"input_ids": 1, "attention_mask": 1, "tokens": 1, "clips": 1, "clip_mask": 1, "saliency": 1}
    dyn = {n: ({0: "b", 1: f"{n}_t"} if n in dims else {0: "b"}) for n in (*names, *outs)}
    dyn |= {n: {0: "b", 1: "l"} for n in ("input_ids", "attention_mask", "tokens") if n in dyn}
    dyn |= {n: {0: "b", 1: "t"} for n in ("clips", "clip_mask", "saliency") if n in dyn}
    torch.onnx.export(
        module,
        args,
        str(path),
        dynamo=False,
        input_names=list(names),
        output_names=list(outs),
        opset_version=17,
        dynamic_axes=dyn,
    )


def export_standin(
    run_dir: Path, out_dir: Path, atol: float = 1e-4, span_clips: int = 64, legacy: bool = False
) -> dict[str, Any]:
    """Write the stand-in head's graphs into ``out_dir`` for ``run_dir``'s text tower; return the manifest's
    moment_head entry. ``legacy``: one graph taking the query's ids, as bundles of schema 3 hold."""
    import onnxruntime as ort

    from models.checkpoint import load_trained

    model, tok, cfg = load_trained(run_dir)
    head = StandInMomentHead(model.text).eval()
    ids, mask = (torch.from_numpy(a) for a in _tokens(tok, ["a red 7 moves left", "a blue 3"]))
    clips = torch.randn(2, 9, int(cfg["embed_dim"]), generator=torch.Generator().manual_seed(0))
    clip_mask = torch.tensor([[1] * 9, [1] * 5 + [0] * 4])
    args = (ids, mask, clips, clip_mask)
    with torch.no_grad():
        want = head(*args)
        sentence, tokens = head.query(ids, mask)
    head_path = out_dir / bundle.MOMENT_HEAD
    if legacy:
        _export(head, args, head_path, bundle.LEGACY_MOMENT_HEAD_INPUTS, bundle.MOMENT_HEAD_OUTPUTS)
        feeds = dict(zip(bundle.LEGACY_MOMENT_HEAD_INPUTS, [a.numpy() for a in args], strict=True))
        got = ort.InferenceSession(str(head_path)).run(None, feeds)
    else:
        _export(
            head.query,
            (ids, mask),
            out_dir / bundle.MOMENT_QUERY,
            bundle.MOMENT_QUERY_INPUTS,
            bundle.MOMENT_QUERY_OUTPUTS,
        )
        _export(
            head.windows,
            (sentence, tokens, mask, clips, clip_mask),
            head_path,
            bundle.MOMENT_HEAD_INPUTS,
            bundle.MOMENT_HEAD_OUTPUTS,
        )
        query, windows = (ort.InferenceSession(str(out_dir / n)) for n in (bundle.MOMENT_QUERY, bundle.MOMENT_HEAD))
        got = run_graphs(
            query,
            windows,
            {
                "input_ids": ids.numpy(),
                "attention_mask": mask.numpy(),
                "clips": clips.numpy(),
                "clip_mask": clip_mask.numpy(),
            },
        )
    err = max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want, strict=True))
    assert err <= atol, err
    entry = {"name": NAME, "span_clips": span_clips, "clip_rate": float(cfg["clip_rate"]), "onnx_max_abs_diff": err}
    return entry if legacy else entry | {"query_graph": bundle.MOMENT_QUERY}


def _tokens(tok: Any, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    enc = tok.encode_batch(texts)
    return np.array([e.ids for e in enc], np.int64), np.array([e.attention_mask for e in enc], np.int64)


def republish_with_head(root: Path, collection: str, run_dir: Path, span_clips: int = 64, legacy: bool = False) -> Path:
    """Publish a new version of ``collection`` = its live files + a stand-in moment head (``legacy``: the
    one-graph kind of schema 3, published as schema 3); returns its path."""
    live = root / collection / str(bundle.read_current(root, collection))
    manifest = json.loads((live / bundle.MANIFEST).read_text())
    version, staging = bundle.staging_dir(root, collection)
    for f in live.iterdir():
        if f.name not in (bundle.MANIFEST, bundle.MOMENT_HEAD, bundle.MOMENT_QUERY):
            (shutil.copytree if f.is_dir() else shutil.copy2)(f, staging / f.name)
    entry = export_standin(run_dir, staging, span_clips=span_clips, legacy=legacy)
    drop = {"schema_version", "collection", "version", "created_at", "files"}
    fields = {k: v for k, v in manifest.items() if k not in drop} | {"moment_head": entry}
    if legacy:
        fields["schema_version"] = bundle.OLDEST_READABLE_SCHEMA  # what wrote one-graph heads
    return bundle.publish(root, collection, version, staging, fields)
