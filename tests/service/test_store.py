"""BundleStore under concurrency: request threads read it while the loader publishes new collections."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import bundle
from service.store import BundleStore
from tests.harness import publish_copy
from xmr.errors import NotFound


def run_readers(
    n: int, read: Callable[[], None], stop: threading.Event
) -> tuple[list[threading.Thread], list[BaseException]]:
    """``n`` threads calling ``read`` until ``stop``; whatever one raises is collected, not lost."""
    errors: list[BaseException] = []

    def loop() -> None:
        try:
            while not stop.is_set():
                read()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    return threads, errors


def test_collections_appearing_while_requests_read_the_store(bundle_root: Path, tmp_path: Path) -> None:
    """Readers walk every live collection (as item lookup, /v1/collections, /readyz and /metrics do)
    while new collections are loaded; none may see an error, and every new one is served."""
    root = tmp_path / "root"
    shutil.copytree(bundle_root, root)
    demo = root / "demo" / str(bundle.read_current(root, "demo"))
    store = BundleStore(root)
    store.refresh()
    item = store.get("demo").searcher.items([0])[0]
    probe = np.zeros((1, store.get("demo").searcher.index.d), np.float32)

    def read() -> None:
        with pytest.raises(NotFound):
            store.find_item("no-such-item")  # walks every live collection, querying each
        assert store.find_item(item.id)[1] == item
        state = store.snapshot()
        assert {name: b.collection for name, b in state.live.items()} == {name: name for name in state.live}
        assert store.get("demo").searcher.search(probe, 3, "all")

    stop = threading.Event()
    threads, errors = run_readers(4, read, stop)
    try:
        for i in range(6):
            publish_copy(demo, root, f"extra{i}")
            assert store.refresh() == [f"extra{i}"]
            assert store.get(f"extra{i}").searcher.item_by_id(item.id) == item
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    if errors:
        raise errors[0]
    assert sorted(store.live) == ["demo", *(f"extra{i}" for i in range(6))]


def test_a_background_first_load_serves_and_the_start_up_refresh_does_not_load_again(bundle_root: Path) -> None:
    """``start_refresh`` (xmr serve's cold start) loads every collection in its thread; the app's own
    refresh afterwards finds nothing to load, and serves the very objects the thread loaded."""
    store = BundleStore(bundle_root).start_refresh()
    store.preload.join(timeout=60)
    loaded = store.get("demo")
    assert store.refresh() == []  # nothing changed: no second load of the same version
    assert store.get("demo") is loaded
    assert loaded.searcher.item_by_id(loaded.searcher.items([0])[0].id) is not None


def test_an_app_started_twice_does_not_reuse_the_store_its_first_shutdown_closed(bundle_root: Path) -> None:
    """A preloaded store serves the first start-up only; the second gets its own, and searches work."""
    from fastapi.testclient import TestClient

    from service.config import Settings
    from service.main import create_app

    app = create_app(Settings(root=bundle_root, poll_seconds=0), BundleStore(bundle_root).start_refresh())
    for query in ("a red 7 moves left", "a blue 3 appears"):
        with TestClient(app) as c:
            r = c.post("/v1/search", json={"query": query, "k": 3})
            assert r.status_code == 200, r.text
            item = c.get(f"/v1/items/{r.json()['hits'][0]['id']}")  # reads items.sqlite: closed at shutdown
            assert item.status_code == 200, item.text
