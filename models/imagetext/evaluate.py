"""Evaluate an image-text model on a precomp split: i2t/t2i R@K, rSum, MedR, MeanR (+ COCO 1K folds and
NDCG with graded relevance when the split has them).

NDCG (xmr's choice of cutoff, the listwise paper's is not known: METHODS.md §6f) is NDCG@10 in both
directions with the demo's fact relevance (``metrics.fact_relevance``); real precomp data has no
graded labels, so NDCG is reported only where ``{split}_facts.json`` exists.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer

from models.evaluate import embed_texts
from models.imagetext.metrics import evaluate_folds, evaluate_sims, fact_relevance, ndcg
from models.imagetext.precomp import PrecompSplit

NDCG_K = 10


@torch.no_grad()
def embed_regions(model: Any, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """(N, K, D) region features (all K valid) -> (N, E) float32 unit-norm image embeddings."""
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(np.array(images[i : i + batch_size], dtype=np.float32))  # a copy: memmaps are read-only
        out.append(model.encode_image(x, torch.full((len(x),), x.shape[1])).numpy())
    return np.concatenate(out)


def similarities(model: Any, tok: Tokenizer, split: PrecompSplit) -> np.ndarray:
    """(N, 5N) cosine similarities of every image with every caption of ``split``."""
    was_training = model.training
    model.eval()
    sims = embed_regions(model, split.images) @ embed_texts(model, tok, split.captions).T
    model.train(was_training)
    return sims


def evaluate_split(model: Any, tok: Tokenizer, split: PrecompSplit, fold: int = 1000) -> dict[str, Any]:
    """Metrics of ``split``: the whole split (Flickr30K / COCO 5K protocol), and the 1K folds when
    the split is a multiple of ``fold`` images larger than one fold (COCO 1K protocol)."""
    sims = similarities(model, tok, split)
    out: dict[str, Any] = {"n_images": len(split), **evaluate_sims(sims)}
    if len(split) > fold and len(split) % fold == 0:
        out["1k"] = evaluate_folds(sims, fold)
    if split.facts is not None:
        rel = fact_relevance(split.facts["images"], split.facts["captions"])  # (N, 5N)
        out["ndcg_i2t"] = ndcg(sims, rel, NDCG_K)
        out["ndcg_t2i"] = ndcg(sims.T, rel.T, NDCG_K)
    return out
