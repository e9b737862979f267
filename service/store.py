"""Live bundles: load each collection's CURRENT version, verify it, and hot-swap on change.

A version that fails to load (missing file, checksum mismatch) is refused and logged; the
previously loaded version keeps serving. Swapping replaces one dict entry, so a request that
already holds the old bundle finishes on it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bundle
from service.encoder import QueryEncoder
from service.rerank import Reranker
from service.searcher import Searcher
from xmr.errors import BundleError, NotFound, NotReady

log = logging.getLogger(__name__)


@dataclass
class LoadedBundle:
    collection: str
    version: str
    path: Path
    manifest: dict[str, Any]
    encoder: QueryEncoder
    searcher: Searcher
    reranker: Reranker | None = None  # token-level pair score over the top candidates (ProTA bundles)

    @property
    def model_id(self) -> str:
        return str(self.manifest.get("model_id", ""))


def load_bundle(path: Path, onnx_threads: int = 1, verify_checksums: bool = True) -> LoadedBundle:
    """Open a published version directory; raises BundleError naming what is wrong."""
    manifest = bundle.verify(path) if verify_checksums else bundle.read_manifest(path)
    try:
        encoder = QueryEncoder(path, threads=onnx_threads)
        searcher = Searcher(path)
        n = bundle.rerank_candidates(manifest)
        reranker = Reranker(path, encoder.tokenizer, n, onnx_threads) if n else None
    except BundleError:
        raise
    except Exception as exc:  # ORT / FAISS / sqlite raise their own types; all mean "unloadable"
        raise BundleError(f"{path}: cannot load ({type(exc).__name__}: {exc})") from exc
    return LoadedBundle(manifest["collection"], manifest["version"], path, manifest, encoder, searcher, reranker)


class BundleStore:
    """Collection name -> live LoadedBundle, plus the last load error per collection."""

    def __init__(
        self, root: Path, onnx_threads: int = 1, verify_checksums: bool = True, default_collection: str | None = None
    ) -> None:
        self.root = root
        self.onnx_threads = onnx_threads
        self.verify_checksums = verify_checksums
        self.default_collection = default_collection
        self.live: dict[str, LoadedBundle] = {}
        self.errors: dict[str, str] = {}

    def refresh(self) -> list[str]:
        """Load every collection whose CURRENT names a version other than the live one.

        Returns the collections that changed. Never raises for a bad bundle: it is logged,
        kept in ``errors``, and the live version stays.
        """
        changed = []
        for name in bundle.list_collections(self.root):
            version = bundle.read_current(self.root, name)
            live = self.live.get(name)
            if version is None:
                continue
            if live and live.version == version:
                self.errors.pop(name, None)  # e.g. CURRENT rolled back to the live version
                continue
            if self.errors.get(name, "").startswith(f"{version}:"):
                continue  # already refused this version; don't re-hash it every poll
            try:
                loaded = load_bundle(self.root / name / version, self.onnx_threads, self.verify_checksums)
            except BundleError as exc:
                self.errors[name] = f"{version}: {exc}"
                log.error("refused %s/%s, still serving %s: %s", name, version, live.version if live else None, exc)
                continue
            self.live[name] = loaded
            self.errors.pop(name, None)
            changed.append(name)
            log.info("serving %s/%s (%s)", name, version, loaded.model_id)
        return changed

    async def poll(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:  # the poller must outlive any surprise; the live bundle is untouched
                log.exception("bundle refresh failed")

    def get(self, collection: str | None) -> LoadedBundle:
        if not self.live:
            detail = "; ".join(f"{k}: {v}" for k, v in self.errors.items()) or f"no collection under {self.root}"
            raise NotReady(f"no bundle loaded ({detail})")
        name = collection or self.default_collection or sorted(self.live)[0]
        if name not in self.live:
            raise NotFound(f"collection {name!r} not found; loaded: {sorted(self.live)}")
        return self.live[name]

    def find_item(self, item_id: str) -> tuple[LoadedBundle, bundle.Item]:
        for loaded in self.live.values():
            item = loaded.searcher.item_by_id(item_id)
            if item is not None:
                return loaded, item
        raise NotFound(f"item {item_id!r} not found")
