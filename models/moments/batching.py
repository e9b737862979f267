"""Padded batches of (query, video clip features, GT windows) for moment heads.

GT windows become fractions of the video's valid clips' span (``n / clip_rate`` seconds), the
convention every head's spans use (models/moments/common.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer

from models.moments.data import MomentQuery
from models.tokenizer import encode

SAL_PAIRS = 2  # positive/negative clip pairs per query for the saliency hinge (Moment-DETR samples 2)


def pad_clips(feats: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """[(T_i, E)] -> clips (B, T, E) float32 zero-padded, clip_mask (B, T) int64."""
    t = max(len(f) for f in feats)
    clips = np.zeros((len(feats), t, feats[0].shape[1]), np.float32)
    mask = np.zeros((len(feats), t), np.int64)
    for i, f in enumerate(feats):
        clips[i, : len(f)], mask[i, : len(f)] = f, 1
    return torch.from_numpy(clips), torch.from_numpy(mask)


def inputs(tok: Tokenizer, texts: list[str], feats: list[np.ndarray]) -> dict[str, torch.Tensor]:
    """The four forward inputs of a head (names as bundle.MOMENT_HEAD_INPUTS)."""
    ids, mask = encode(tok, texts)
    clips, clip_mask = pad_clips(feats)
    return {
        "input_ids": torch.from_numpy(ids),
        "attention_mask": torch.from_numpy(mask),
        "clips": clips,
        "clip_mask": clip_mask,
    }


def training_batch(
    tok: Tokenizer, qs: list[MomentQuery], feats: dict[str, np.ndarray], clip_rate: float, rng: np.random.Generator
) -> dict[str, Any]:
    """Forward inputs + ``windows`` [(G, 2)] and ``gt`` (B, 2) as fractions, ``inside`` (B, T),
    ``pos``/``neg`` (B, SAL_PAIRS) clip ids for the saliency hinge, ``video`` (B,) ids."""
    batch: dict[str, Any] = inputs(tok, [q.query for q in qs], [feats[q.vid] for q in qs])
    t = batch["clips"].shape[1]
    centres = (np.arange(t) + 0.5) / clip_rate  # seconds
    windows, inside, pos, neg = [], np.zeros((len(qs), t), np.float32), [], []
    for i, q in enumerate(qs):
        n = len(feats[q.vid])
        w = np.clip(np.asarray(q.windows, np.float32) / (n / clip_rate), 0.0, 1.0)
        windows.append(torch.from_numpy(w))
        hit = np.zeros(t, bool)
        for s, e in q.windows:
            hit |= (centres >= s) & (centres < e)
        hit[n:] = False
        inside[i] = hit
        ins, outs = np.flatnonzero(hit), np.flatnonzero(~hit[:n])
        ins = ins if len(ins) else np.array([int(min(n - 1, q.windows[0][0] * clip_rate))])
        outs = outs if len(outs) else ins
        pos.append(rng.choice(ins, SAL_PAIRS))
        neg.append(rng.choice(outs, SAL_PAIRS))
    vids = {v: k for k, v in enumerate(dict.fromkeys(q.vid for q in qs))}
    batch.update(
        windows=windows,
        gt=torch.stack([w[0] for w in windows]),
        inside=torch.from_numpy(inside),
        pos=torch.from_numpy(np.stack(pos)).long(),
        neg=torch.from_numpy(np.stack(neg)).long(),
        video=torch.tensor([vids[q.vid] for q in qs]),
    )
    return batch
