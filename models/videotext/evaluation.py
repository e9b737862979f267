"""Video-text evaluation helpers: token-level similarity for models that score pairs themselves,
and the MSR-VTT 1k-A protocol from its csv (one caption per test video), with and without DSL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer

from models.data.datasets import FrameBank, Sample, cached_frames
from models.metrics import t2v_v2t, t2v_v2t_dsl
from models.tokenizer import encode
from models.videotext.features import FeatureBank, load_feature_bank
from xmr.errors import ConfigError


@torch.no_grad()
def bank_tokens(model: Any, bank: FrameBank, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame tokens (N, T, E) float32 and lengths (N,) of every item of ``bank``."""
    out = np.zeros((len(bank.ids), max(int(bank.lengths.max()), 1), model.cfg["embed_dim"]), np.float32)
    for i in range(0, len(bank.ids), batch_size):
        idx = np.arange(i, min(i + batch_size, len(bank.ids)))
        frames, mask = bank.batch(idx)
        _, tokens = model.encode_video(torch.from_numpy(frames), torch.from_numpy(mask))
        out[idx, : tokens.shape[1]] = tokens.numpy()
    return out, bank.lengths


def token_similarity(model: Any, tok: Tokenizer, queries: list[str], bank: FrameBank) -> np.ndarray:
    """(Q, N) pair scores of a token-level model (``model.score_matrix``), queries in batches of 256."""
    tokens, lengths = bank_tokens(model, bank)
    rows = []
    for i in range(0, len(queries), 256):
        ids, mask = encode(tok, queries[i : i + 256])
        rows.append(model.score_matrix(ids, mask, tokens, lengths))
    return np.concatenate(rows)


def evaluate_pairs(
    model: Any,
    tok: Tokenizer,
    cfg: dict[str, Any],
    pairs: list[tuple[str, str]],
    samples: dict[str, Sample],
    cache_dir: Path,
) -> dict[str, Any]:
    """1k-A protocol: ``pairs`` of (video_id, sentence), one per test video -> metrics.

    ``{"t2v", "v2t"}`` without inference tricks (what is reported), and under ``"dsl"`` the same with
    dual-softmax re-weighting (uses the whole query set as a prior; reported separately, never mixed).
    Token-level models also get ``"global"``: the cosine of their pooled vectors alone (the FAISS stage).
    """
    from models.evaluate import similarity

    videos = [samples[v] for v, _ in pairs]
    bank = cached_frames(videos, cfg["clip_rate"], cfg["frame_size"], cache_dir)
    sim = similarity(model, tok, [s for _, s in pairs], bank)
    out = {**t2v_v2t(sim), "dsl": t2v_v2t_dsl(sim), "n": len(pairs)}
    if hasattr(model, "score_matrix"):
        from models.evaluate import embed_bank, embed_texts

        out["global"] = t2v_v2t(embed_texts(model, tok, [s for _, s in pairs]) @ embed_bank(model, bank).T)
    return out


@torch.no_grad()
def embed_features(model: Any, bank: FeatureBank, batch_size: int = 64) -> np.ndarray:
    """(N, E) video embeddings from precomputed region features (models whose video tower has
    ``encode_features``, e.g. ViSERN) instead of decoded frames."""
    if not hasattr(model.vision, "encode_features"):
        raise ConfigError(f"model {model.cfg.get('name', model.cfg['arch'])!r} cannot read region feature files")
    out = []
    for i in range(0, len(bank.ids), batch_size):
        feats, mask = bank.batch(np.arange(i, min(i + batch_size, len(bank.ids))))
        out.append(model.vision.encode_features(torch.from_numpy(feats), torch.from_numpy(mask))[0].numpy())
    return np.concatenate(out)


def evaluate_pairs_features(
    model: Any, tok: Tokenizer, pairs: list[tuple[str, str]], feature_dir: Path
) -> dict[str, Any]:
    """1k-A metrics with the videos read from ``<feature_dir>/<video_id>.npy|.npz`` (frames x regions x dim)."""
    from models.evaluate import embed_texts

    regions, dim = model.vision.reason.pos.shape[0], model.vision.region_dim
    bank = load_feature_bank(feature_dir, [v for v, _ in pairs], regions, dim)
    sim = embed_texts(model, tok, [s for _, s in pairs]) @ embed_features(model, bank).T
    return {**t2v_v2t(sim), "n": len(pairs)}
