"""An image-text run indexed by ``xmr index build`` and served by POST /v1/search {"modality": "image"}."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

import bundle
from indexer.build import build
from indexer.embed import Embedder
from indexer.manifest import InputItem, read_manifest
from models.evaluate import embed_texts
from models.imagetext.evaluate import embed_regions
from models.imagetext.precomp import read_split
from service.config import Settings
from service.main import create_app
from tests.models.imagetext.conftest import IMAGES


@pytest.fixture(scope="module")
def it_bundle(it_data: Path, it_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("it_bundles")
    build(it_data / "manifest.jsonl", "images", root, it_run, batch_size=64)
    return root


@pytest.fixture(scope="module")
def client(it_bundle: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(root=it_bundle, poll_seconds=0, batch_min_encode_ms=1e9))) as c:
        yield c


def test_embedder_reads_image_files_as_the_demo_features_were_made(it_data: Path, it_run: Path) -> None:
    """Vectors from the PNG files (grid extractor inside the model) equal vectors from the precomp features."""
    emb = Embedder(it_run, device="cpu")
    test = read_split(it_data, "test")
    items = {it.id: it for it in read_manifest(it_data / "manifest.jsonl")}
    got = emb.embed([items[i] for i in test.ids])
    want = embed_regions(emb.model, test.images)
    np.testing.assert_allclose(np.concatenate(got.vectors), want, atol=1e-5)  # one (1, E) segment per image
    assert all(c.shape == (0, emb.dim) for c in got.clips)
    video = InputItem("v", "video", "v.mp4", it_data / "v.mp4")
    assert "image-text model" in emb.embed([video]).failed[0][1]


def test_image_search_ranks_as_the_torch_model_does(
    client: TestClient, it_bundle: Path, it_data: Path, it_run: Path
) -> None:
    """Oracle: the torch model's text embedding against the torch model's embedding of every image file."""
    manifest = bundle.verify(it_bundle / "images" / bundle.read_current(it_bundle, "images"))
    assert manifest["counts"] == {"video": 0, "image": IMAGES} and manifest["onnx_max_abs_diff"] <= 1e-4
    query = "a red 7 in the top left"
    r = client.post("/v1/search", json={"query": query, "k": 5, "modality": "image"})
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]
    assert len(hits) == 5 and {h["modality"] for h in hits} == {"image"}
    emb = Embedder(it_run, device="cpu")
    items = read_manifest(it_data / "manifest.jsonl")
    scores = np.concatenate(emb.embed(items).vectors) @ embed_texts(emb.model, emb.tokenizer, [query])[0]
    top = np.argsort(-scores, kind="stable")[:5]
    assert [h["id"] for h in hits] == [items[i].id for i in top]
    assert [h["score"] for h in hits] == pytest.approx(scores[top].tolist(), abs=1e-4)
