"""Evaluation: text->video / video->text (and text->image) R@1/5/10, MdR, MnR on a split.

Protocol (MSR-VTT 1k-A style): one query caption per item, the caption describing the whole
item (``captions[0]``), against all items of the split and modality.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer

from models.data.datasets import FrameBank, Sample, cached_frames
from models.metrics import t2v_v2t
from models.tokenizer import encode


@torch.no_grad()
def embed_texts(model: Any, tok: Tokenizer, texts: list[str], batch_size: int = 256) -> np.ndarray:
    """(N, E) float32 unit-norm text embeddings."""
    out = []
    for i in range(0, len(texts), batch_size):
        ids, mask = encode(tok, texts[i : i + batch_size])
        out.append(model.encode_text(torch.from_numpy(ids), torch.from_numpy(mask)).numpy())
    return np.concatenate(out) if out else np.zeros((0, model.cfg["embed_dim"]), np.float32)


@torch.no_grad()
def embed_bank(model: Any, bank: FrameBank, batch_size: int = 64) -> np.ndarray:
    """(N, E) float32 unit-norm item embeddings for every item of ``bank``."""
    out = []
    for i in range(0, len(bank.ids), batch_size):
        frames, mask = bank.batch(np.arange(i, min(i + batch_size, len(bank.ids))))
        v, _ = model.encode_video(torch.from_numpy(frames), torch.from_numpy(mask))
        out.append(v.numpy())
    return np.concatenate(out)


def similarity(model: Any, tok: Tokenizer, queries: list[str], bank: FrameBank) -> np.ndarray:
    """(Q, N) query-item scores: the model's own pair score when it has one (token-level models
    such as ProTA, see models/videotext), else the cosine of the two embeddings."""
    if hasattr(model, "score_matrix"):
        from models.videotext.evaluation import token_similarity

        return token_similarity(model, tok, queries, bank)
    return embed_texts(model, tok, queries) @ embed_bank(model, bank).T


def evaluate_split(
    model: Any,
    tok: Tokenizer,
    cfg: dict[str, Any],
    samples: list[Sample],
    split: str,
    cache_dir: Path,
    rewrite: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """Metrics per modality present in ``split``: {"video": {"t2v": {...}, "v2t": {...}, "n": N}, ...}.

    ``rewrite`` maps each query caption first (e.g. ``paraphrase``); videos only when given.
    """
    results: dict[str, Any] = {}
    for modality in ("video",) if rewrite else ("video", "image"):
        items = [s for s in samples if s.split == split and s.modality == modality and s.captions]
        if len(items) < 2:
            continue
        bank = cached_frames(items, cfg["clip_rate"], cfg["frame_size"], cache_dir)
        queries = [rewrite(s.captions[0]) if rewrite else s.captions[0] for s in items]
        sim = similarity(model, tok, queries, bank)
        results[modality] = {**t2v_v2t(sim), "n": len(items)}
    return results
