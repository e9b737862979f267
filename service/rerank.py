"""Re-ranking of the FAISS top candidates with a bundle's token-level pair score (ProTA), torch-free.

FAISS ranks by the global vectors; a token-level model scores a (query, video) pair from the query's
tokens and the video's per-frame tokens, which a single vector cannot hold. The bundle carries the
score as ``rerank.onnx`` (query tokens + candidates' clip features -> scores) and the video tokens
as its clips/ store (memory-mapped); this module re-scores the first ``candidates`` hits of a
search and reorders the videos among them. Items without clip features (images) keep their slots
and first-stage scores, so a mixed result list keeps its video/image interleaving.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from bundle import RERANK, RERANK_INPUTS, RERANK_OUTPUT, ClipStore
from service.searcher import Ranked


class Reranker:
    """Loaded once per bundle; ``rerank`` is thread-safe (ORT sessions allow concurrent ``run``)."""

    def __init__(self, bundle_dir: Path, tokenizer: Tokenizer, candidates: int, threads: int = 1) -> None:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(bundle_dir / RERANK), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self.clips = ClipStore(bundle_dir)
        self.tokenizer = tokenizer
        self.candidates = candidates

    def scores(self, query: str, rows: list[int]) -> np.ndarray:
        """(K,) float32 pair scores of ``query`` against the videos at ``rows`` (each with clips)."""
        enc = self.tokenizer.encode(query)
        ids = np.array([enc.ids], np.int64)
        mask = np.array([enc.attention_mask], np.int64)
        clips, clip_mask = self.clips.padded(rows)
        feeds = dict(zip(RERANK_INPUTS, (ids, mask, clips, clip_mask), strict=True))
        out = self.session.run([RERANK_OUTPUT], feeds)[0]
        return np.asarray(out[0], np.float32)

    def rerank(self, query: str, ranked: list[Ranked]) -> list[Ranked]:
        """``ranked`` hits best first -> the same hits with the videos among the first ``candidates``
        re-scored and reordered in the slots videos held (each keeps its best FAISS segment); the rest
        unchanged. A long video is scored on all its clips, not only its best segment's."""
        head, tail = ranked[: self.candidates], ranked[self.candidates :]
        slots = [i for i, hit in enumerate(head) if self.clips.count(hit.row) > 0]
        if len(slots) < 2:
            return ranked
        videos = [head[i] for i in slots]
        new = self.scores(query, [hit.row for hit in videos])
        order = np.argsort(-new, kind="stable")
        out = list(head)
        for slot, j in zip(slots, order, strict=True):
            out[slot] = videos[j]._replace(score=float(new[j]))
        return out + tail
