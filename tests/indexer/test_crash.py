"""Crash safety of publishing: a real ``xmr index build`` subprocess is SIGKILLed at each named point.

The indexer's test hook (xmr/testhooks.py) makes the build write a marker file and sleep at the
chosen point, so every kill lands exactly there. After each kill the previous version is live and
intact, and a rerun publishes and removes the dead build's staging at once (its lock names a dead pid).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import bundle
from indexer.build import build
from xmr.testhooks import POINTS

ITEMS, SHARD = 6, 2  # 3 shards: a kill while embedding leaves shard 0 saved, shards 1-2 not


@pytest.fixture(scope="module")
def tiny(corpus: Path, trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(manifest of a few items of ``corpus``, bundle root with one published version of collection "c")."""
    base = tmp_path_factory.mktemp("crash")
    recs = [json.loads(x) for x in (corpus / "manifest.jsonl").read_text().splitlines()[:ITEMS]]
    manifest = base / "m.jsonl"
    manifest.write_text("".join(json.dumps({**r, "uri": str(corpus / r["uri"])}) + "\n" for r in recs))
    build(manifest, "c", base / "root", trained_run, batch_size=SHARD, shard_size=SHARD)
    return manifest, base / "root"


def run_until_paused(point: str, manifest: Path, root: Path, run: Path, tmp: Path) -> subprocess.Popen[bytes]:
    """Start ``xmr index build`` paused at ``point``; returns once it has reached it."""
    marker, log = tmp / "paused", (tmp / "build.log").open("wb")
    env = {**os.environ, "XMR_TEST_PAUSE_AT": point, "XMR_TEST_PAUSE_MARKER": str(marker), "XMR_TEST_PAUSE_S": "300"}
    args = ["index", "build", str(manifest), "--collection", "c", "--root", str(root), "--model", str(run)]
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "xmr"), *args, "--batch-size", str(SHARD), "--shard-size", str(SHARD)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    deadline = time.monotonic() + 120
    while not marker.is_file():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"build never reached {point!r} (exit {proc.wait()}): {(tmp / 'build.log').read_text()}")
        time.sleep(0.05)
    assert int(marker.read_text()) == proc.pid  # the process we are about to kill is the one that paused
    return proc


def staging_dirs(root: Path) -> list[Path]:
    return sorted((root / "c").glob(".staging-*"))


def check_left_behind(point: str, root: Path, live: str) -> None:
    """What the killed build left must be exactly what ``point`` implies, and all of it unpublished."""
    staged = staging_dirs(root)
    versions = bundle.list_versions(root, "c")
    if point == "embedding":
        assert not staged and versions == [live]
        assert len(list((root / "c" / ".work").glob("*/shard-*.npz"))) == 1
    elif point == "renamed":  # sealed and in place, never made live
        assert not staged and len(versions) == 2
        (orphan,) = set(versions) - {live}
        bundle.verify(root / "c" / orphan)
    else:
        (staging,) = staged
        assert bundle.build_alive(staging) is False  # its lock names the killed process
        assert not (staging / bundle.MANIFEST).exists()
        assert (staging / bundle.INDEX).is_file()
        assert (staging / bundle.ITEMS).is_file() == (point == "staged")
        assert (staging / bundle.TEXT_ENCODER).is_file() == (point == "staged")


@pytest.mark.parametrize("point", POINTS)
def test_build_killed_at_each_point_leaves_previous_version_live(
    point: str, tiny: tuple[Path, Path], trained_run: Path, tmp_path: Path
) -> None:
    manifest, template = tiny
    root = tmp_path / "root"
    shutil.copytree(template, root)
    live = bundle.read_current(root, "c")
    assert live
    proc = run_until_paused(point, manifest, root, trained_run, tmp_path)
    try:
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        assert proc.wait() == -signal.SIGKILL
    assert bundle.read_current(root, "c") == live
    bundle.verify(root / "c" / live)
    check_left_behind(point, root, live)

    rerun = build(manifest, "c", root, trained_run, batch_size=SHARD, shard_size=SHARD)
    assert bundle.read_current(root, "c") == rerun.version != live
    assert bundle.verify(rerun.path)["counts"] == {"video": ITEMS, "image": 0}
    assert not staging_dirs(root)  # the dead build's staging went at once, not after STALE_STAGING_S
    assert not any((root / "c" / ".work").glob("*/*"))
