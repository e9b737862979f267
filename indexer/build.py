"""``xmr index build``: reader (manifest) -> mapper (Embedder) -> writer (bundle), then publish.

The FAISS index is exact inner product over unit-norm vectors (cosine), one vector per segment
(FAISS id = segments row -> items row); the bundle's layout (file names, tables, clips) is owned by
``bundle``. Relative uris resolve against the manifest's folder, recorded absolute as ``media_root``.
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
from indexer.manifest import InputItem, media_base, read_manifest
from indexer.shards import ShardStore
from xmr.errors import MediaError
from xmr.testhooks import pause_point

log = logging.getLogger(__name__)
FACTORY = "Flat"
RERANK_CANDIDATES = 50  # FAISS hits a token-level model (ProTA) re-scores per query (docs/benchmarks.md)


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
    """Embed ``items`` in order, shard by shard; finished shards are loaded from ``shards``.

    With ``shards``, clip features stay on disk in the shard files (``clips`` of the result is
    empty; ``stage`` copies them shard by shard), so memory never holds the corpus's clips.
    """
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
            if shards:
                part.clips = []
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


def stage(staging: Path, emb: Embedded, embedder: Embedder, shards: ShardStore | None = None) -> None:
    """Write the index (one vector per segment), the items and segments tables and the clips (from
    ``emb``, or from the finished ``shards`` when ``embed_corpus`` left them there)."""
    write_index(staging / bundle.INDEX, np.concatenate(emb.vectors))
    pause_point("writing-index")
    if shards is None:
        bundle.write_clips(staging, emb.clips, embedder.dim)
    else:
        n = shards.count_done()
        bundle.write_clips_streamed(staging, shards.clip_lengths(n), shards.clip_features(n), embedder.dim)
    rows = [
        bundle.Item(row, it.id, it.modality, it.uri, dur, it.title, it.tags, it.metadata)
        for row, (it, dur) in enumerate(zip(emb.items, emb.durations, strict=True))
    ]
    bundle.write_items(staging / bundle.ITEMS, rows)
    item_of_segment = np.repeat(np.arange(len(rows)), [len(v) for v in emb.vectors])  # (N_segments,)
    bundle.write_segments(staging / bundle.ITEMS, item_of_segment, np.concatenate(emb.segments))


def export_moments(run_dir: Path, staging: Path) -> dict[str, Any] | None:
    """The run's moment head as the bundle's moment graph, and its manifest entry; None for a run without one.

    A run has a moment head when ``run_dir/moments`` exists (``xmr moments train``); its export is
    checked against torch by ``models.moments.export`` and raises an XmrError when the folder holds no head.
    A head with a clip side (cdnet) also gets its clip graph run over every staged clip (``stage`` first).
    """
    if not (run_dir / "moments").is_dir():
        return None
    from models.moments.export import export_moment_head  # only runs that have a head need models.moments

    entry: dict[str, Any] = export_moment_head(run_dir, staging)
    if entry.get("clip_graph"):  # the head's per-clip tensors, computed once here instead of in every request
        import onnxruntime as ort

        session = ort.InferenceSession(str(staging / entry["clip_graph"]), providers=["CPUExecutionProvider"])
        entry["clip_side"] = bundle.write_clip_side(staging, session)
    log.info("moment head %s (span %s clips) added to the bundle", entry.get("name"), entry.get("span_clips"))
    return entry


def stage_reranker(staging: Path, embedder: Embedder) -> dict[str, Any]:
    """For a model that scores pairs itself (``pair_scores``, e.g. ProTA): stage its ONNX re-ranker and
    return the manifest's ``rerank`` entry; ``{}`` for plain embedding models."""
    if not hasattr(embedder.model, "pair_scores"):
        return {}
    from models.videotext.rerank import export_rerank

    err = export_rerank(embedder.model, embedder.tokenizer, staging)
    arch = str(embedder.cfg["arch"])
    return {"rerank": bundle.rerank_entry(staging, RERANK_CANDIDATES, model=arch, onnx_max_abs_diff=err)}


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
        stage(staging, emb, embedder, shards)
        err = export_text_encoder(embedder.model, embedder.tokenizer, staging)
        moment_head = export_moments(run_dir, staging)
        counts = {m: sum(it.modality == m for it in emb.items) for m in ("video", "image")}
        skipped = [(it.uri, reason) for it, reason in emb.failed]
        fields: dict[str, Any] = {
            "model_id": mid,
            "dim": embedder.dim,
            "metric": "inner_product",
            "faiss_factory": FACTORY,
            "counts": counts,
            "segments": sum(len(v) for v in emb.vectors),
            bundle.MEDIA_ROOT: str(media_base(manifest)),
            "corpus_fingerprint": fingerprint,
            "clip_rate": embedder.clip_rate,
            "onnx_max_abs_diff": err,
            "skipped": [{"uri": u, "reason": r} for u, r in skipped],
        }
        fields.update(stage_reranker(staging, embedder))
        if moment_head is not None:
            fields["moment_head"] = moment_head
        pause_point("staged")
        path = bundle.publish(root, collection, version, staging, fields)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shards.clear()
    bundle.collect_garbage(root, collection, keep=keep)
    return BuildReport(version, path, counts, skipped, err)
