"""Resumable indexing: the corpus is cut into shards of items; each embedded shard is saved
atomically, and a rerun of the same build (same corpus, same model) loads finished shards
instead of decoding and embedding them again.

Work lives in ``<root>/<collection>/.work/<key>/shard-00000.npz``; the key hashes the corpus
fingerprint, the model id and the shard size, so a changed corpus or model never reuses stale
shards. The work folder is deleted once the bundle is published.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from bundle.layout import WORK_DIR
from indexer.embed import Embedded
from indexer.manifest import InputItem


class ShardStore:
    def __init__(self, root: Path, collection: str, corpus_fingerprint: str, model_id: str, shard_size: int) -> None:
        key = hashlib.sha256(f"{corpus_fingerprint}\n{model_id}\n{shard_size}".encode()).hexdigest()[:16]
        self.path = root / collection / WORK_DIR / key
        self.path.mkdir(parents=True, exist_ok=True)

    def _file(self, i: int) -> Path:
        return self.path / f"shard-{i:05d}.npz"

    def done(self, i: int) -> bool:
        return self._file(i).is_file()

    def count_done(self) -> int:
        return len(list(self.path.glob("shard-*.npz")))

    def save(self, i: int, shard: list[InputItem], emb: Embedded) -> None:
        """Write shard ``i`` (the embeddings of ``shard``'s items) via a temp file + rename."""
        index = {id(it): k for k, it in enumerate(shard)}
        dim = emb.vectors[0].shape[1] if emb.vectors else 0
        arrays = {
            "ok": np.array([index[id(it)] for it in emb.items], np.int64),
            "n_segments": np.array([len(v) for v in emb.vectors], np.int64),
            "vectors": np.concatenate(emb.vectors) if emb.vectors else np.zeros((0, dim), np.float32),
            "segments": np.concatenate(emb.segments) if emb.segments else np.zeros((0, 2)),
            "lengths": np.array([len(c) for c in emb.clips], np.int64),
            "clips": np.concatenate(emb.clips) if emb.clips else np.zeros((0, dim), np.float32),
            "durations": np.array(emb.durations, np.float64),
            "failed": np.array([index[id(it)] for it, _ in emb.failed], np.int64),
            "reasons": np.array(json.dumps([r for _, r in emb.failed])),
        }
        tmp = self.path / f".shard-{i:05d}.tmp.npz"
        np.savez(tmp, **arrays)  # type: ignore[arg-type]
        tmp.replace(self._file(i))

    def load(self, i: int, shard: list[InputItem]) -> Embedded:
        with np.load(self._file(i)) as z:
            return Embedded(
                items=[shard[k] for k in z["ok"]],
                vectors=_split(z["vectors"], z["n_segments"]),
                segments=_split(z["segments"], z["n_segments"]),
                clips=_split(z["clips"], z["lengths"]),
                durations=[float(d) for d in z["durations"]],
                failed=list(zip([shard[k] for k in z["failed"]], json.loads(str(z["reasons"])), strict=True)),
            )

    def clip_lengths(self, n_shards: int) -> list[int]:
        """Clips per embedded item of shards ``0..n_shards-1``, in order (read without the features)."""
        lengths: list[int] = []
        for i in range(n_shards):
            with np.load(self._file(i)) as z:
                lengths += z["lengths"].tolist()
        return lengths

    def clip_features(self, n_shards: int) -> Iterator[np.ndarray]:
        """Each shard's (sum T_i, E) clip features in turn: the corpus's clips never all sit in memory."""
        for i in range(n_shards):
            with np.load(self._file(i)) as z:
                yield z["clips"]

    def clear(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _split(rows: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    """Cut concatenated ``rows`` back into consecutive pieces of ``lengths`` rows."""
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    return [rows[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
