import json
import shutil
import sqlite3
from pathlib import Path

import faiss
import numpy as np
import pytest

import bundle
from indexer.build import build, corpus_fingerprint
from indexer.embed import Embedder
from indexer.manifest import read_manifest
from tests.conftest import TINY_IMAGES, TINY_VIDEOS
from xmr.errors import BundleError, ManifestError, MediaError


def test_published_bundle_matches_the_design(bundle_root: Path, corpus: Path, trained_run: Path) -> None:
    """The manifest describes what was written: every listed item, the index's real metric and type,
    the weights that embedded them, the corpus they came from; one clip per 0.5 s of video."""
    version = bundle.read_current(bundle_root, "demo")
    path = bundle_root / "demo" / version
    manifest = bundle.verify(path)
    listed = read_manifest(corpus / "manifest.jsonl")
    with sqlite3.connect(path / "items.sqlite") as db:
        rows = db.execute("SELECT row, id, modality, duration FROM items ORDER BY row").fetchall()
    assert [(r[1], r[2]) for r in rows] == [(it.id, it.modality) for it in listed]  # all of them, in order
    assert manifest["counts"] == {m: sum(it.modality == m for it in listed) for m in ("video", "image")}
    index = faiss.read_index(str(path / "index.faiss"))
    metric = {"inner_product": faiss.METRIC_INNER_PRODUCT}[manifest["metric"]]
    described = faiss.index_factory(manifest["dim"], manifest["faiss_factory"], metric)
    described = faiss.deserialize_index(faiss.serialize_index(described))  # as read back from a file
    assert (index.metric_type, index.d, index.ntotal) == (metric, manifest["dim"], len(rows))
    assert type(faiss.downcast_index(index)) is type(faiss.downcast_index(described))
    assert manifest["onnx_max_abs_diff"] <= 1e-4
    assert manifest["model_id"].endswith("-" + bundle.sha256_file(trained_run / "last.pt")[:12])
    assert manifest["corpus_fingerprint"] == corpus_fingerprint(listed) != corpus_fingerprint(listed[1:])
    offsets = np.load(path / "clips" / "offsets.npy")
    feats = np.load(path / "clips" / "features.npy", mmap_mode="r")
    assert len(offsets) == len(rows) + 1 and offsets[-1] == len(feats)
    for row, _, modality, duration in rows:  # one clip per 0.5 s of video, none for images
        assert offsets[row + 1] - offsets[row] == (round(duration * 2) if modality == "video" else 0)


def test_flat_index_equals_brute_force(bundle_root: Path, trained_run: Path, corpus: Path) -> None:
    """The FAISS index returns exactly the numpy inner-product ranking of freshly embedded items."""
    path = bundle_root / "demo" / bundle.read_current(bundle_root, "demo")
    index = faiss.read_index(str(path / "index.faiss"))
    stored = index.reconstruct_n(0, index.ntotal)
    items = read_manifest(corpus / "manifest.jsonl")[:8]
    emb = Embedder(trained_run).embed(items)
    np.testing.assert_allclose(stored[:8], np.concatenate(emb.vectors), atol=1e-5)  # batched == stored
    single = np.concatenate([Embedder(trained_run).embed([it]).vectors[0] for it in items[:3]])
    np.testing.assert_allclose(single, stored[:3], atol=1e-5)  # one at a time == batched
    rng = np.random.default_rng(0)
    queries = rng.normal(size=(5, stored.shape[1])).astype(np.float32)
    scores, ids = index.search(queries, 10)
    brute = queries @ stored.T
    np.testing.assert_array_equal(ids, np.argsort(-brute, axis=1)[:, :10])
    np.testing.assert_allclose(scores, np.sort(brute, axis=1)[:, ::-1][:, :10], rtol=1e-5)


def test_missing_and_corrupt_videos_are_reported_and_skipped(corpus: Path, trained_run: Path, tmp_path: Path) -> None:
    media = tmp_path / "media"
    shutil.copytree(corpus / "videos", media / "videos")
    (media / "videos" / "vid00001.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    (media / "videos" / "vid00002.mp4").unlink()
    lines = [json.loads(x) for x in (corpus / "manifest.jsonl").read_text().splitlines()][:6]
    (media / "m.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    report = build(media / "m.jsonl", "c", tmp_path / "root", trained_run)
    assert report.counts == {"video": 4, "image": 0}
    reasons = dict(report.skipped)
    assert set(reasons) == {"videos/vid00001.mp4", "videos/vid00002.mp4"}
    assert "cannot decode" in reasons["videos/vid00001.mp4"] and "not found" in reasons["videos/vid00002.mp4"]
    manifest = bundle.verify(report.path)
    assert [(s["uri"], s["reason"]) for s in manifest["skipped"]] == report.skipped


def test_build_with_no_readable_media_leaves_live_version_alone(
    bundle_root: Path, trained_run: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    shutil.copytree(bundle_root, root)
    live = bundle.read_current(root, "demo")
    (tmp_path / "bad.jsonl").write_text(json.dumps({"id": "x", "uri": "nowhere.mp4"}) + "\n")
    with pytest.raises(MediaError, match="none of the 1 listed media could be read"):
        build(tmp_path / "bad.jsonl", "demo", root, trained_run)
    assert bundle.read_current(root, "demo") == live
    bundle.verify(root / "demo" / live)


def test_build_failing_after_staging_removes_it(
    corpus: Path, trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error while the staging folder is being written (here: the ONNX export) removes that folder."""
    import models.export

    seen: list[Path] = []

    def failing_export(model: object, tokenizer: object, out: Path) -> float:
        assert (out / "index.faiss").is_file() and (out / "items.sqlite").is_file()  # staging is half written
        seen.append(out)
        raise BundleError(f"{out}: simulated export failure")

    monkeypatch.setattr(models.export, "export_text_encoder", failing_export)
    lines = (corpus / "manifest.jsonl").read_text().splitlines()[:2]
    (tmp_path / "m.jsonl").write_text(
        "".join(json.dumps({**json.loads(x), "uri": str(corpus / json.loads(x)["uri"])}) + "\n" for x in lines)
    )
    with pytest.raises(BundleError, match="simulated export failure"):
        build(tmp_path / "m.jsonl", "c", tmp_path / "root", trained_run)
    (staging,) = seen
    assert staging.name.startswith(".staging-") and not staging.exists()
    assert bundle.read_current(tmp_path / "root", "c") is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": "a", "uri": "a.mp4"}\n{broken\n', r"m.jsonl:2: not valid JSON"),
        ('{"id": "a"}\n', r"m.jsonl:1: no 'uri'"),
        (
            '{"id": "a", "uri": "a.mp4"}\n{"id": "a", "uri": "b.mp4"}\n',
            r"duplicate id 'a' at .*m.jsonl:2 \(first at .*m.jsonl:1\)",
        ),
        (
            '{"uri": "a.mp4"}\n{"id": "x", "uri": "b.png"}\n{"uri": "a.mp4"}\n',
            r"duplicate id 'a.mp4' at .*:3 \(first at .*:1\)",
        ),
        ("", "no media listed"),
    ],
)
def test_malformed_manifests_name_the_problem(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "m.jsonl").write_text(content)
    with pytest.raises(ManifestError, match=message):
        read_manifest(tmp_path / "m.jsonl")


def test_csv_and_directory_manifests(corpus: Path, tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text(f"uri,title\n{corpus}/videos/vid00000.mp4,hello\nclip.webm,\n")
    item, rel = read_manifest(tmp_path / "m.csv")  # no id column: the uri as written is the id
    assert (item.id, item.modality, item.title) == (f"{corpus}/videos/vid00000.mp4", "video", "hello")
    assert (rel.id, rel.path) == ("clip.webm", tmp_path.resolve() / "clip.webm")
    items = read_manifest(corpus)  # a folder: ids are paths relative to it; its manifests are not media
    media = [i for i in items if i.modality != "unsupported"]
    assert {i.modality for i in media} == {"video", "image"} and len(media) == TINY_VIDEOS + TINY_IMAGES
    assert {"videos/vid00000.mp4", "images/img00000.png"} <= {i.id for i in media}
    with pytest.raises(ManifestError, match="not found"):
        read_manifest(tmp_path / "missing.jsonl")


def test_interrupted_build_resumes_from_finished_shards(
    corpus: Path, trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = (corpus / "manifest.jsonl").read_text().splitlines()[:20]
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    for line in lines:  # media resolve relative to the manifest
        uri = json.loads(line)["uri"]
        (tmp_path / uri).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(corpus / uri, tmp_path / uri)
    reference = build(tmp_path / "m.jsonl", "ref", tmp_path / "root", trained_run, batch_size=4, shard_size=8)

    calls = {"n": 0}
    real_encode = Embedder.encode

    def crash_on_fourth(self: Embedder, decoded: object) -> object:
        calls["n"] += 1
        if calls["n"] == 4:  # batches of 4, shards of 8: shard 0 done, shard 1 half done
            raise KeyboardInterrupt("simulated crash")
        return real_encode(self, decoded)  # type: ignore[arg-type]

    monkeypatch.setattr(Embedder, "encode", crash_on_fourth)
    with pytest.raises(KeyboardInterrupt):
        build(tmp_path / "m.jsonl", "c", tmp_path / "root", trained_run, batch_size=4, shard_size=8)
    assert bundle.read_current(tmp_path / "root", "c") is None
    assert len(list((tmp_path / "root" / "c" / ".work").glob("*/shard-*.npz"))) == 1

    calls["n"] = -100  # no more crashes; count the batches the rerun embeds
    report = build(tmp_path / "m.jsonl", "c", tmp_path / "root", trained_run, batch_size=4, shard_size=8)
    assert calls["n"] == -100 + 3  # shard 0 loaded from disk; 12 items left = 3 batches
    assert not (tmp_path / "root" / "c" / ".work").exists() or not any((tmp_path / "root" / "c" / ".work").iterdir())
    got = faiss.read_index(str(report.path / "index.faiss")).reconstruct_n(0, 20)
    want = faiss.read_index(str(reference.path / "index.faiss")).reconstruct_n(0, 20)
    np.testing.assert_allclose(got, want, atol=1e-6)
    ref_clips = np.load(reference.path / "clips" / "features.npy")
    np.testing.assert_array_equal(np.load(report.path / "clips" / "features.npy"), ref_clips)
