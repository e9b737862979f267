"""``xmr index build`` with a run that has a moment head puts it into the bundle; one without does not.

The head comes from ``models.moments.export.export_moment_head`` (the moments-models work, tested there).
This test checks the indexer's side: it installs the stand-in as that module (same signature and return
value), so it needs no trained moment head and runs whether or not the real package is present.
"""

from __future__ import annotations

import shutil
import sys
import types
from pathlib import Path

import pytest

import bundle
from indexer.build import build
from service.store import load_bundle
from tests.standin_moment_head import NAME, export_standin
from xmr.errors import BundleError


@pytest.fixture
def small_manifest(corpus: Path, tmp_path: Path) -> Path:
    lines = (corpus / "manifest.jsonl").read_text().splitlines()
    out = corpus / f"manifest-{tmp_path.name}.jsonl"  # beside the media, so relative uris resolve
    out.write_text("\n".join(lines[:4] + lines[-2:]) + "\n")
    return out


@pytest.fixture
def run_with_head(trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "moments").mkdir()
    mod = types.ModuleType("models.moments.export")
    mod.export_moment_head = export_standin  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "models.moments.export", mod)  # restored after the test
    return run


def test_run_with_a_moment_head_gets_it_into_the_bundle(
    small_manifest: Path, run_with_head: Path, tmp_path: Path
) -> None:
    report = build(small_manifest, "m", tmp_path / "bundles", run_with_head, batch_size=8)
    manifest = bundle.verify(report.path)
    entry = manifest["moment_head"]
    assert bundle.MOMENT_HEAD in manifest["files"] and entry["onnx_max_abs_diff"] <= 1e-4
    assert entry["query_graph"] == bundle.MOMENT_QUERY and bundle.MOMENT_QUERY in manifest["files"]
    assert entry["clip_rate"] == manifest["clip_rate"] and entry["span_clips"] >= 1
    assert entry["name"] == NAME
    live = load_bundle(report.path)
    assert live.moments is not None and live.moments.span == entry["span_clips"]
    (loc,) = live.moments.localize("a red 7", [(0, live.searcher.items([0])[0].duration)], 3)
    assert loc.moments and len(loc.saliency) == live.moments.clips.count(0)


def test_head_and_manifest_entry_must_come_together(small_manifest: Path, run_with_head: Path, tmp_path: Path) -> None:
    path = build(small_manifest, "m", tmp_path / "bundles", run_with_head, batch_size=8).path
    (path / bundle.MOMENT_HEAD).unlink()
    with pytest.raises(BundleError, match="moment_head.onnx listed in the manifest is missing"):
        bundle.verify(path)
    manifest = bundle.read_manifest(path)
    del manifest["files"][bundle.MOMENT_HEAD]
    with pytest.raises(BundleError, match="must come together"):
        bundle.moment_head_entry(path, manifest)
    manifest["files"][bundle.MOMENT_HEAD] = "x"
    manifest["moment_head"]["clip_rate"] = 5.0
    with pytest.raises(BundleError, match="do not fit the clips"):
        bundle.moment_head_entry(path, manifest)
    del manifest["moment_head"]["span_clips"]
    with pytest.raises(BundleError, match="lacks \\['span_clips'\\]"):
        bundle.moment_head_entry(path, manifest)
    manifest["moment_head"]["span_clips"] = 4
    manifest["moment_head"]["clip_rate"] = manifest["clip_rate"]
    del manifest["files"][bundle.MOMENT_QUERY]
    with pytest.raises(BundleError, match="names query graph 'moment_query.onnx', which the bundle does not list"):
        bundle.moment_head_entry(path, manifest)
    manifest["files"][bundle.MOMENT_QUERY] = "x"
    manifest["moment_head"]["clip_side"] = ["qsd_clip_scale"]  # schema 6: a clip side needs its graph ...
    with pytest.raises(BundleError, match=r"clip_graph None with clip_side \['qsd_clip_scale'\]"):
        bundle.moment_head_entry(path, manifest)
    manifest["moment_head"]["clip_graph"] = bundle.MOMENT_CLIPS
    with pytest.raises(BundleError, match="names clip graph 'moment_clips.onnx', not listed"):
        bundle.moment_head_entry(path, manifest)
    manifest["files"][bundle.MOMENT_CLIPS] = "x"  # ... and its stored outputs
    with pytest.raises(BundleError, match=r"clip side \['qsd_clip_scale'\] is not in the bundle"):
        bundle.moment_head_entry(path, manifest)
    manifest["files"][bundle.CLIP_SIDE_FILE.format(name="qsd_clip_scale")] = "x"
    assert bundle.moment_head_entry(path, manifest) == manifest["moment_head"]


def test_run_without_a_head_builds_a_bundle_without_one(
    small_manifest: Path, trained_run: Path, tmp_path: Path
) -> None:
    path = build(small_manifest, "m", tmp_path / "bundles", trained_run, batch_size=8).path
    manifest = bundle.verify(path)
    assert "moment_head" not in manifest and bundle.MOMENT_HEAD not in manifest["files"]
    assert load_bundle(path).moments is None
