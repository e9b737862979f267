import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import bundle
from xmr.errors import BundleError


def _stage(root: Path, payload: str = "x") -> tuple[str, Path]:
    version, staging = bundle.staging_dir(root, "c")
    for name in bundle.REQUIRED_FILES:
        (staging / name).write_text(f"{name}:{payload}")
    return version, staging


def test_publish_then_verify(tmp_path: Path) -> None:
    version, staging = _stage(tmp_path)
    path = bundle.publish(tmp_path, "c", version, staging, {"dim": 8})
    assert bundle.read_current(tmp_path, "c") == version
    manifest = bundle.verify(path)
    assert manifest["dim"] == 8 and set(manifest["files"]) == set(bundle.REQUIRED_FILES)
    assert not staging.exists()


def test_checksum_mismatch_is_refused_by_name(tmp_path: Path) -> None:
    version, staging = _stage(tmp_path)
    path = bundle.publish(tmp_path, "c", version, staging, {})
    (path / "index.faiss").write_text("tampered")
    with pytest.raises(BundleError, match="checksum mismatch for index.faiss"):
        bundle.verify(path)
    (path / "index.faiss").unlink()
    with pytest.raises(BundleError, match="index.faiss listed in the manifest is missing"):
        bundle.verify(path)


def test_publish_refuses_incomplete_staging(tmp_path: Path) -> None:
    version, staging = _stage(tmp_path)
    (staging / "items.sqlite").unlink()
    with pytest.raises(BundleError, match="missing \\['items.sqlite'\\]"):
        bundle.publish(tmp_path, "c", version, staging, {})
    assert bundle.read_current(tmp_path, "c") is None


def test_crash_before_current_flip_leaves_previous_live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    v1, s1 = _stage(tmp_path, "one")
    bundle.publish(tmp_path, "c", v1, s1, {})
    v2, s2 = _stage(tmp_path, "two")

    def crash(*_: object) -> None:
        raise OSError("simulated crash between rename and CURRENT replace")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        bundle.publish(tmp_path, "c", v2, s2, {})
    monkeypatch.undo()
    assert bundle.read_current(tmp_path, "c") == v1
    bundle.verify(tmp_path / "c" / v1)


def test_garbage_collection_keeps_live_and_newest(tmp_path: Path) -> None:
    versions = []
    for i in range(4):
        v, s = _stage(tmp_path, str(i))
        bundle.publish(tmp_path, "c", v, s, {})
        versions.append(v)
    bundle.set_current(tmp_path, "c", versions[0])  # roll back to the oldest
    doomed = bundle.collect_garbage(tmp_path, "c", keep=2)
    assert doomed == [versions[1]]
    assert bundle.list_versions(tmp_path, "c") == [versions[0], versions[2], versions[3]]


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_dead_builds_staging_is_removed_at_once_live_ones_kept(tmp_path: Path) -> None:
    _, mine = _stage(tmp_path)  # this process: a running build
    _, dead = _stage(tmp_path)
    lock = json.loads((dead / bundle.layout.STAGING_LOCK).read_text())
    (dead / bundle.layout.STAGING_LOCK).write_text(json.dumps({**lock, "pid": dead_pid()}))
    _, reused = _stage(tmp_path)  # a live pid that started at another time: not the build that wrote the lock
    (reused / bundle.layout.STAGING_LOCK).write_text(json.dumps({**lock, "started": "1"}))
    _, unowned = _stage(tmp_path)  # no lock (or another host's): only the age rule applies
    (unowned / bundle.layout.STAGING_LOCK).unlink()
    _, elsewhere = _stage(tmp_path)
    (elsewhere / bundle.layout.STAGING_LOCK).write_text(json.dumps({**lock, "host": "another-host"}))
    assert bundle.build_alive(mine) is True and bundle.build_alive(dead) is False
    assert bundle.build_alive(reused) is False and bundle.build_alive(unowned) is None
    assert bundle.collect_garbage(tmp_path, "c") == []
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == sorted(p.name for p in (mine, unowned, elsewhere))
    old = time.time() - bundle.writer.STALE_STAGING_S - 60
    for p in (mine, unowned):
        os.utime(p, (old, old))
    assert bundle.remove_abandoned_staging(tmp_path, "c") == [unowned]
    assert mine.is_dir() and elsewhere.is_dir()  # a running build is kept however long it takes


def test_items_cache_answers_as_the_database_does_and_stays_bounded(tmp_path: Path) -> None:
    items = [bundle.Item(i, f"v{i}", "video", f"v{i}.mp4", float(i), "", [str(i)], {"i": i}) for i in range(50)]
    bundle.write_items(tmp_path / bundle.ITEMS, items)
    cached, fresh = bundle.ItemsDB(tmp_path, cache_items=8), bundle.ItemsDB(tmp_path, cache_items=0)
    rng = np.random.default_rng(0)
    try:
        for _ in range(200):
            rows = [int(r) for r in rng.integers(0, 60, 10)]  # rows 50..59 name no item: left out
            want = {r: items[r] for r in rows if r < 50}
            assert cached.by_rows(rows) == fresh.by_rows(rows) == want
            assert len(cached._cache) <= 8 and not fresh._cache
        cached.db.close()  # the most recent rows come from the cache alone
        last = list(cached._cache)
        assert cached.by_rows(last) == {r: items[r] for r in last}
    finally:
        fresh.close()


def test_set_current_rejects_unknown_version(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    with pytest.raises(BundleError, match="no such published version"):
        bundle.set_current(tmp_path, "c", "v-nope")


def test_items_roundtrip(tmp_path: Path) -> None:
    """What the writer stores is what the service's reader returns, by row, by id and by modality."""
    items = [
        bundle.Item(0, "a", "video", "a.mp4", 3.5, "t", ["x"], {"k": [1]}),
        bundle.Item(1, "b", "image", "b.png", 0.0, "", [], {}),
    ]
    bundle.write_items(tmp_path / bundle.ITEMS, items)
    db = bundle.ItemsDB(tmp_path)
    try:
        assert db.by_rows([1, 0]) == {0: items[0], 1: items[1]}
        assert db.by_id("b") == items[1] and db.by_id("nope") is None
        assert db.rows_by_modality("video").tolist() == [0]
    finally:
        db.close()


def test_segments_roundtrip(tmp_path: Path) -> None:
    """FAISS id -> segment row -> items row, with [start, end] seconds; rows must be 0..N-1."""
    import numpy as np

    items = [
        bundle.Item(0, "long.mp4", "video", "long.mp4", 96.0, "", [], {}),
        bundle.Item(1, "p", "image", "p", 0, "", [], {}),
    ]
    bundle.write_items(tmp_path / bundle.ITEMS, items)
    bounds = np.array([[0.0, 32.0], [16.0, 48.0], [64.0, 96.0], [0.0, 0.0]])
    bundle.write_segments(tmp_path / bundle.ITEMS, np.array([0, 0, 0, 1]), bounds)
    db = bundle.ItemsDB(tmp_path)
    item_of, got = db.segments()
    db.close()
    assert item_of.tolist() == [0, 0, 0, 1] and got.tolist() == bounds.tolist()


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (bundle.SCHEMA_VERSION + 1, "is newer than this xmr reads"),
        (1, "rebuild it with `xmr index build`"),
        (2, "schema_version 2 is older than this xmr reads \\(3\\)"),  # 2 had no segments table
        (3, None),  # 3 is read: its moment head, if any, is the one-graph kind (service/moments.py)
    ],
)
def test_other_schema_versions_are_refused_by_name(tmp_path: Path, schema: int, message: str | None) -> None:
    version, staging = _stage(tmp_path)
    path = bundle.publish(tmp_path, "c", version, staging, {})
    manifest = json.loads((path / bundle.MANIFEST).read_text())
    (path / bundle.MANIFEST).write_text(json.dumps({**manifest, "schema_version": schema}))
    if message is None:
        bundle.verify(path)
        return
    with pytest.raises(BundleError, match=message):
        bundle.verify(path)


def test_manifest_naming_another_version_is_refused(tmp_path: Path) -> None:
    version, staging = _stage(tmp_path)
    path = bundle.publish(tmp_path, "c", version, staging, {})
    moved = path.with_name("v-copied")
    path.rename(moved)
    with pytest.raises(BundleError, match="differs from its folder 'v-copied'"):
        bundle.verify(moved)


def test_only_the_bundle_package_names_bundle_files() -> None:
    """The format has one owner: no other package spells a bundle file name."""
    root = Path(__file__).resolve().parents[2]
    names = [bundle.INDEX, bundle.ITEMS, bundle.TEXT_ENCODER, bundle.TOKENIZER, bundle.MOMENT_HEAD, "features.npy"]
    offenders = [
        f"{p.relative_to(root)}: {n}"
        for pkg in ("indexer", "service", "models", "xmr")
        for p in (root / pkg).rglob("*.py")
        for n in names
        if f'"{n}"' in p.read_text() or f"'{n}'" in p.read_text()
    ]
    offenders.remove("models/encoders/minilm.py: tokenizer.json")  # MiniLM's own upstream file, not a bundle's
    assert not offenders, offenders


def test_clips_written_piece_by_piece_equal_clips_written_at_once(tmp_path: Path) -> None:
    """Shard-sized pieces that cut across items give the same files' contents as per-item arrays."""
    import numpy as np

    rng = np.random.default_rng(0)
    clips = [rng.normal(size=(n, 8)).astype(np.float32) for n in (5, 0, 3, 12, 1)]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    bundle.write_clips(tmp_path / "a", clips, 8)
    flat = np.concatenate(clips)
    bundle.write_clips_streamed(tmp_path / "b", [len(c) for c in clips], [flat[:7], flat[7:20], flat[20:]], 8)
    for name in (bundle.CLIPS_FEATURES, bundle.CLIPS_OFFSETS):
        np.testing.assert_array_equal(np.load(tmp_path / "a" / name), np.load(tmp_path / "b" / name))
    store = bundle.ClipStore(tmp_path / "b")
    np.testing.assert_allclose(store.clips(3), clips[3], atol=1e-2)  # float16 on disk
    assert store.count(1) == 0 and store.count(3) == 12
    with pytest.raises(BundleError, match="clip features hold 7 rows, the offsets 21"):
        bundle.write_clips_streamed(tmp_path / "b", [len(c) for c in clips], [flat[:7]], 8)
