"""Small seeded moment data with a random frozen text tower: heads are tested without a retrieval run."""

from __future__ import annotations

import numpy as np
import torch
from tokenizers import Tokenizer

from models.encoders.text import TextTransformer
from models.moments.data import MomentQuery
from models.tokenizer import build_tokenizer, encode

COLORS, DIGITS, MOTIONS = ["red", "green", "blue", "yellow"], list("0123456789"), ["moves left", "moves up", "appears"]
PHRASES = [f"a {c} {d} {m}" for c in COLORS for d in DIGITS for m in MOTIONS]
CLIP_RATE = 2.0


def tower_and_tokenizer(dim: int = 16) -> tuple[TextTransformer, Tokenizer]:
    torch.manual_seed(0)
    tok = build_tokenizer(PHRASES)
    return TextTransformer(tok.get_vocab_size(), dim, width=32, layers=1, heads=2, max_tokens=16).eval(), tok


def synthetic_set(
    tower: TextTransformer, tok: Tokenizer, n: int, seed: int, noise: float = 0.6
) -> tuple[list[MomentQuery], dict[str, np.ndarray]]:
    """``n`` videos of 20-60 clips, one query each; clips inside the event are the query's embedding plus
    noise, the rest another phrase's embedding plus noise (so the event is findable from the features)."""
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        emb = tower(*(torch.from_numpy(a) for a in encode(tok, PHRASES))).numpy()
    qs, feats = [], {}
    for i in range(n):
        t = int(rng.integers(20, 61))
        a, b = rng.choice(len(PHRASES), 2, replace=False)
        width = int(rng.integers(max(2, t // 10), t // 4 + 1))
        start = int(rng.integers(0, t - width))
        base = np.where((np.arange(t) >= start) & (np.arange(t) < start + width), a, b)
        x = emb[base] + noise * rng.standard_normal((t, emb.shape[1])) / np.sqrt(emb.shape[1])
        vid = f"v{seed}-{i}"
        feats[vid] = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
        dur = t / CLIP_RATE
        win = [start / CLIP_RATE, (start + width) / CLIP_RATE]
        ids = [c for c in range(int(dur / 2)) if 2 * c < win[1] and 2 * c + 2 > win[0]]
        row = {
            "qid": vid,
            "query": PHRASES[a],
            "vid": vid,
            "duration": dur,
            "relevant_windows": [win],
            "relevant_clip_ids": ids,
            "saliency_scores": [[4, 4, 4] for _ in ids],
        }
        qs.append(MomentQuery(vid, PHRASES[a], vid, dur, [win], vid, row))
    return qs, feats
