"""``xmr index build``: reader (manifest) -> mapper (Embedder) -> writer (bundle), then publish.

The FAISS index is exact inner product over unit-norm vectors (cosine). Item ``row`` i in
items.sqlite is FAISS id i; the bundle's layout (file names, tables, clips) is owned by ``bundle``.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import shutil
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from tqdm import tqdm

import bundle
from indexer.embed import Decoded, Embedded, Embedder, batches, model_id
from indexer.manifest import InputItem, read_manifest
from indexer.shards import ShardStore
from xmr.errors import MediaError
from xmr.testhooks import pause_point

log = logging.getLogger(__name__)
FACTORY = "Flat"


@dataclass
class BuildReport:
    version: str
    path: Path
    counts: dict[str, int]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (uri, reason)
    onnx_max_abs_diff: float = 0.0


def corpus_fingerprint(items: list[InputItem]) -> str:
    """sha256 over (id, uri, size) of every listed item: a changed corpus gets a new fingerprint."""
    h = hashlib.sha256()
    for it in sorted(items, key=lambda i: i.id):
        size = it.path.stat().st_size if it.path.is_file() else -1
        h.update(f"{it.id}\t{it.uri}\t{size}\n".encode())
    return h.hexdigest()


def embed_corpus(
    embedder: Embedder,
    items: list[InputItem],
    batch_size: int,
    shards: ShardStore | None = None,
    shard_size: int = 256,
) -> Embedded:
    """Embed ``items`` in order, shard by shard; finished shards are loaded from ``shards``."""
    total = Embedded()
    with tqdm(total=len(items), desc="embedding", unit="item", disable=None) as bar:
        for i, shard in enumerate(batches(items, shard_size)):
            if shards and shards.done(i):
                part = shards.load(i, shard)
            else:
                part = embed_items(embedder, shard, batch_size, bar)
                if shards:
                    shards.save(i, shard, part)
                pause_point("embedding")
            total.extend(part)
            bar.n = min(len(items), (i + 1) * shard_size)
            bar.refresh()
    return total


def embed_items(embedder: Embedder, items: list[InputItem], batch_size: int, bar: Any, readers: int = 2) -> Embedded:
    """Embed ``items`` in batches; decoding of the next batches overlaps the encoder's forward pass.

    PyAV releases the GIL while decoding, so ``readers`` threads keep the encoder fed
    (docs/benchmarks.md). Output order is input order.
    """
    total = Embedded()
    with ThreadPoolExecutor(readers, thread_name_prefix="xmr-decode") as pool:
        pending: deque[Future[Decoded]] = deque()
        todo = iter(batches(items, batch_size))
        for batch in itertools.islice(todo, readers + 1):
            pending.append(pool.submit(embedder.load, batch))
        while pending:
            decoded = pending.popleft().result()
            if batch := next(todo, []):
                pending.append(pool.submit(embedder.load, batch))
            part = embedder.encode(decoded)
            total.extend(part)
            bar.update(len(decoded.items) + len(decoded.failed))
    return total


def write_index(path: Path, vectors: np.ndarray) -> None:
    index = faiss.index_factory(vectors.shape[1], FACTORY, faiss.METRIC_INNER_PRODUCT)
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    faiss.write_index(index, str(path))


def stage(staging: Path, emb: Embedded, embedder: Embedder) -> None:
    vectors = np.stack(emb.vectors)
    write_index(staging / bundle.INDEX, vectors)
    pause_point("writing-index")
    bundle.write_clips(staging, emb.clips, embedder.dim)
    rows = [
        bundle.Item(row, it.id, it.modality, it.uri, dur, it.title, it.tags, {**it.metadata, "path": str(it.path)})
        for row, (it, dur) in enumerate(zip(emb.items, emb.durations, strict=True))
    ]
    bundle.write_items(staging / bundle.ITEMS, rows)


def build(
    manifest: Path,
    collection: str,
    root: Path,
    run_dir: Path,
    batch_size: int = 32,
    keep: int = 3,
    shard_size: int = 256,
) -> BuildReport:
    """Index every readable item of ``manifest`` and publish a new version of ``collection``.

    Unreadable media are skipped and listed in the report (and in manifest.json). Nothing live
    changes unless the whole bundle was written and sealed. An interrupted build, rerun with the
    same corpus and model, resumes from its last finished shard of ``shard_size`` items.
    """
    from models.export import export_text_encoder

    items = read_manifest(manifest)
    if dead := bundle.remove_abandoned_staging(root, collection):
        log.info("removed the staging of %d dead or stale build(s): %s", len(dead), [p.name for p in dead])
    embedder = Embedder(run_dir)
    fingerprint, mid = corpus_fingerprint(items), model_id(run_dir, embedder.cfg)
    shards = ShardStore(root, collection, fingerprint, mid, shard_size)
    if done := shards.count_done():
        log.info("resuming: %d finished shard(s) of %d items found in %s", done, shard_size, shards.path)
    emb = embed_corpus(embedder, items, batch_size, shards, shard_size)
    if not emb.items:
        raise MediaError(f"{manifest}: none of the {len(items)} listed media could be read")
    version, staging = bundle.staging_dir(root, collection)
    try:
        stage(staging, emb, embedder)
        err = export_text_encoder(embedder.model, embedder.tokenizer, staging)
        counts = {m: sum(it.modality == m for it in emb.items) for m in ("video", "image")}
        skipped = [(it.uri, reason) for it, reason in emb.failed]
        fields: dict[str, Any] = {
            "model_id": mid,
            "dim": embedder.dim,
            "metric": "inner_product",
            "faiss_factory": FACTORY,
            "counts": counts,
            "corpus_fingerprint": fingerprint,
            "clip_rate": embedder.clip_rate,
            "onnx_max_abs_diff": err,
            "skipped": [{"uri": u, "reason": r} for u, r in skipped],
        }
        pause_point("staged")
        path = bundle.publish(root, collection, version, staging, fields)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shards.clear()
    bundle.collect_garbage(root, collection, keep=keep)
    return BuildReport(version, path, counts, skipped, err)
