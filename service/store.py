"""Live bundles: load each collection's CURRENT version, verify it, and hot-swap on change.

A version that fails to load (missing file, checksum mismatch) is refused and logged; the
previously loaded version keeps serving.

Request threads read the store while the poller loads: the store's state (live bundles and load
errors) is copy-on-write. A refresh builds new mappings and replaces the one ``Snapshot``
reference (an atomic store), never mutating a published one, so a request that takes
``store.snapshot()`` once sees one consistent state for its whole life (a request that holds the
old bundle finishes on it) and can iterate it while collections appear.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import bundle
from service.encoder import QueryEncoder
from service.moments import MomentHead, load_moment_head
from service.rerank import Reranker
from service.searcher import Searcher
from xmr.errors import BundleError, NotFound, NotReady

if TYPE_CHECKING:
    from service.config import Settings

log = logging.getLogger(__name__)


@dataclass
class LoadedBundle:
    collection: str
    version: str
    path: Path
    manifest: dict[str, Any]
    encoder: QueryEncoder
    searcher: Searcher
    moments: MomentHead | None = None  # None: the bundle has no moment head (search still serves)
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
        moments = load_moment_head(path, manifest, onnx_threads)
        if moments is not None:
            moments.check_shares(encoder.encode)
        n = bundle.rerank_candidates(manifest)
        reranker = Reranker(path, encoder.tokenizer, n, onnx_threads) if n else None
    except BundleError:
        raise
    except Exception as exc:  # ORT / FAISS / sqlite raise their own types; all mean "unloadable"
        raise BundleError(f"{path}: cannot load ({type(exc).__name__}: {exc})") from exc
    return LoadedBundle(
        manifest["collection"],
        manifest["version"],
        path,
        manifest,
        encoder,
        searcher,
        moments=moments,
        reranker=reranker,
    )


@dataclass(frozen=True)
class Snapshot:
    """One published state of the store; never mutated, so readers need no lock."""

    live: Mapping[str, LoadedBundle] = field(default_factory=lambda: MappingProxyType({}))
    errors: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # collection -> reason

    def get(self, collection: str | None, default: str | None, root: Path) -> LoadedBundle:
        """The live bundle of ``collection`` (or the default, or the first by name); NotReady/NotFound otherwise."""
        if not self.live:
            detail = "; ".join(f"{k}: {v}" for k, v in self.errors.items()) or f"no collection under {root}"
            raise NotReady(f"no bundle loaded ({detail})")
        name = collection or default or min(self.live)
        if name not in self.live:
            raise NotFound(f"collection {name!r} not found; loaded: {sorted(self.live)}")
        return self.live[name]


class BundleStore:
    """Collection name -> live LoadedBundle, plus the last load error per collection (copy-on-write)."""

    def __init__(
        self, root: Path, onnx_threads: int = 1, verify_checksums: bool = True, default_collection: str | None = None
    ) -> None:
        self.root = root
        self.onnx_threads = onnx_threads
        self.verify_checksums = verify_checksums
        self.default_collection = default_collection
        self._state = Snapshot()
        self._refreshing = threading.Lock()  # one writer at a time; readers never wait
        self.preload: threading.Thread | None = None  # the background first load (``start_refresh``)

    @classmethod
    def from_settings(cls, settings: Settings) -> BundleStore:
        return cls(settings.root, settings.onnx_threads, settings.verify_checksums, settings.default_collection)

    def start_refresh(self) -> BundleStore:
        """Start the first ``refresh`` in a background thread and return at once (cold start).

        The checksums and the probes run outside the GIL and ONNX Runtime's session set-up partly so, so
        the bundles load on a second core while the web stack (FastAPI, pydantic, uvicorn) is still being
        imported (that import gets slower, but the load no longer follows it: docs/benchmarks.md). The
        app's own ``refresh`` at start-up then waits on the lock for this one and finds
        every collection loaded; whichever of the two runs first, the result is the same.
        """
        self.preload = threading.Thread(target=self._refresh_logged, name="xmr-preload", daemon=True)
        self.preload.start()
        return self

    def _refresh_logged(self) -> None:
        try:
            self.refresh()
        except Exception:  # the app's start-up refresh retries, and raises in its own thread
            log.exception("background bundle load failed")

    def snapshot(self) -> Snapshot:
        """The current state; take it once per request and read only it."""
        return self._state

    @property
    def live(self) -> Mapping[str, LoadedBundle]:
        return self._state.live

    @property
    def errors(self) -> Mapping[str, str]:
        return self._state.errors

    def _publish(self, live: dict[str, LoadedBundle], errors: dict[str, str]) -> None:
        self._state = Snapshot(MappingProxyType(dict(live)), MappingProxyType(dict(errors)))

    def refresh(self) -> list[str]:
        """Load every collection whose CURRENT names a version other than the live one.

        Returns the collections that changed. Never raises for a bad bundle: it is logged,
        kept in ``errors``, and the live version stays. Each change is published as it happens.
        """
        with self._refreshing:
            live, errors = dict(self._state.live), dict(self._state.errors)
            changed = [name for name in bundle.list_collections(self.root) if self._refresh_one(name, live, errors)]
            self._publish(live, errors)
        return changed

    def _refresh_one(self, name: str, live: dict[str, LoadedBundle], errors: dict[str, str]) -> bool:
        """Bring ``name`` up to its CURRENT in ``live``/``errors`` (publishing them); True if it changed."""
        version = bundle.read_current(self.root, name)
        old = live.get(name)
        if version is None or errors.get(name, "").startswith(f"{version}:"):
            return False  # nothing published, or already refused this version: don't re-hash it every poll
        if old and old.version == version:
            errors.pop(name, None)  # e.g. CURRENT rolled back to the live version
            return False
        try:
            loaded = load_bundle(self.root / name / version, self.onnx_threads, self.verify_checksums)
        except BundleError as exc:
            errors[name] = f"{version}: {exc}"
            log.error("refused %s/%s, still serving %s: %s", name, version, old.version if old else None, exc)
            self._publish(live, errors)
            return False
        live[name] = loaded
        errors.pop(name, None)
        self._publish(live, errors)
        log.info("serving %s/%s (%s)", name, version, loaded.model_id)
        return True

    async def poll(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:  # the poller must outlive any surprise; the live bundle is untouched
                log.exception("bundle refresh failed")

    def get(self, collection: str | None) -> LoadedBundle:
        """The live bundle of ``collection`` (default: the configured one, else the first by name)."""
        return self._state.get(collection, self.default_collection, self.root)

    def find_item(self, item_id: str) -> tuple[LoadedBundle, bundle.Item]:
        """The first live collection (by name) holding ``item_id``, and the item."""
        live = self._state.live
        for name in sorted(live):
            loaded = live[name]
            item = loaded.searcher.item_by_id(item_id)
            if item is not None:
                return loaded, item
        raise NotFound(f"item {item_id!r} not found")
