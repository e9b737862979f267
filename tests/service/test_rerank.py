"""A ProTA bundle: `xmr index build` stages rerank.onnx; the service re-ranks FAISS hits without torch."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

import bundle
from service.config import Settings
from service.main import create_app
from service.store import LoadedBundle, load_bundle

pytestmark = pytest.mark.slow
QUERIES = ["a red 7 moves left", "a blue 3 appears, then a green 1 moves up", "a yellow 9 moves down"]


@pytest.fixture(scope="module")
def prota_root(corpus: Path, videotext_runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    from indexer.build import build

    root = tmp_path_factory.mktemp("prota-bundles")
    build(corpus / "manifest.jsonl", "demo", root, videotext_runs["prota_tiny"], batch_size=32)
    return root


@pytest.fixture(scope="module")
def live(prota_root: Path) -> LoadedBundle:
    return load_bundle(prota_root / "demo" / str(bundle.read_current(prota_root, "demo")))


@pytest.fixture(scope="module")
def client(prota_root: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(root=prota_root, poll_seconds=0, batch_min_encode_ms=1e9))) as c:
        yield c


def test_manifest_names_the_reranker(live: LoadedBundle) -> None:
    spec = live.manifest["rerank"]
    assert spec["candidates"] == 50 and spec["model"] == "prota" and spec["onnx_max_abs_diff"] <= 1e-4
    assert live.reranker is not None and bundle.RERANK in live.manifest["files"]


def test_service_scores_equal_torch_on_the_bundles_features(
    live: LoadedBundle, videotext_runs: dict[str, Path]
) -> None:
    from models.checkpoint import load_trained
    from models.tokenizer import encode

    assert live.reranker is not None
    model, tok, _ = load_trained(videotext_runs["prota_tiny"])
    rows = [int(r) for r in live.searcher.rows_by_modality["video"][:40]]
    clips, mask = live.reranker.clips.padded(rows)
    for q in QUERIES:
        got = live.reranker.scores(q, rows)
        ids, tmask = encode(tok, [q])
        with torch.no_grad():
            want = model.pair_scores(*(torch.from_numpy(a) for a in (ids, tmask, clips, mask))).numpy()[0]
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_bundle_clips_are_the_models_video_tokens(
    live: LoadedBundle, videotext_runs: dict[str, Path], corpus: Path
) -> None:
    from models.checkpoint import load_trained
    from models.data.media import decode_video

    model, _, cfg = load_trained(videotext_runs["prota_tiny"])
    row = int(live.searcher.rows_by_modality["video"][0])
    item = live.searcher.items([row])[row]
    frames, _ = decode_video(corpus / item.uri, cfg["clip_rate"], cfg["frame_size"])
    with torch.no_grad():
        _, tokens = model.encode_video(torch.from_numpy(frames[None]), torch.ones(1, len(frames), dtype=torch.long))
    np.testing.assert_allclose(live.reranker.clips.clips(row), tokens[0].numpy(), atol=2e-3)  # float16 storage


def test_search_returns_videos_in_reranked_order(client: TestClient, live: LoadedBundle) -> None:
    assert live.reranker is not None
    for q in QUERIES:
        hits = client.post("/v1/search", json={"query": q, "k": 10, "modality": "video"}).json()["hits"]
        vec = live.encoder.encode([q])
        first = live.searcher.search(vec, 50, "video")[0]
        rows = [r for r, _ in first]
        scores = live.reranker.scores(q, rows)
        want = [rows[j] for j in np.argsort(-scores, kind="stable")[:10]]
        items = live.searcher.items(want)
        assert [h["id"] for h in hits] == [items[r].id for r in want]
        np.testing.assert_allclose([h["score"] for h in hits], np.sort(scores)[::-1][:10], atol=1e-6)


def test_images_keep_their_slots_in_a_mixed_list(client: TestClient, live: LoadedBundle) -> None:
    assert live.reranker is not None
    q = "a blue 3 and a red 1 on a photo of coffee"
    hits = client.post("/v1/search", json={"query": q, "k": 30, "modality": "all"}).json()["hits"]
    vec = live.encoder.encode([q])
    first = live.searcher.search(vec, 30, "all")[0]
    items = live.searcher.items([r for r, _ in first])
    assert [h["modality"] for h in hits] == [items[r].modality for r, _ in first]
    assert [h["id"] for h in hits if h["modality"] == "image"] == [
        items[r].id for r, _ in first if items[r].modality == "image"
    ]


def test_rerank_path_never_imports_torch(prota_root: Path) -> None:
    script = (
        "import sys\nfrom fastapi.testclient import TestClient\nfrom service.config import Settings\n"
        "from service.main import create_app\n"
        "with TestClient(create_app(Settings(root=sys.argv[1], poll_seconds=0))) as c:\n"
        "    r = c.post('/v1/search', json={'query': 'a red 7 moves left', 'k': 3, 'modality': 'video'})\n"
        "    assert r.status_code == 200, r.text\n"
        "print('LEAKED', sorted(m for m in sys.modules if m == 'torch' or m.startswith(('torch.', 'models.'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(prota_root)], capture_output=True, text=True, check=True)
    assert "LEAKED []" in out.stdout, out.stdout + out.stderr


def test_only_the_bundle_package_spells_the_reranker_file() -> None:
    root = Path(__file__).resolve().parents[2]
    offenders = [
        str(p.relative_to(root))
        for pkg in ("indexer", "service", "models", "xmr", "benchmarks")
        for p in (root / pkg).rglob("*.py")
        if f'"{bundle.RERANK}"' in p.read_text() or f"'{bundle.RERANK}'" in p.read_text()
    ]
    assert not offenders, offenders
