"""POST /v1/moments and search's ``moments`` option on the real demo bundle with a stand-in moment head.

The head's span is set to 6 clips (3 s), so every demo video (10-16 clips) is scored in overlapping
windows. The stand-in's saliency is the cosine of query and clip and each span's score the mean saliency
of the clips inside it, so both have an exact oracle: the text encoder's embedding against the clips.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

import bundle
from service.moments import MomentHead
from service.store import LoadedBundle
from tests.service.test_api import client_for
from tests.standin_moment_head import republish_with_head

SPAN = 6
QUERY = "a red 7 moves left"


@pytest.fixture(scope="module")
def moments_root(bundle_root: Path, trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("moments") / "root"
    shutil.copytree(bundle_root, root)
    republish_with_head(root, "demo", trained_run, span_clips=SPAN)
    return root


@pytest.fixture(scope="module")
def client(moments_root: Path) -> Iterator[TestClient]:
    with client_for(moments_root, batch_min_encode_ms=1e9) as c:
        yield c


def live_of(c: TestClient) -> LoadedBundle:
    live: LoadedBundle = c.app.state.store.live["demo"]  # type: ignore[attr-defined]
    return live


def oracle_cosines(live: LoadedBundle, query: str, row: int) -> np.ndarray:
    """(T,) cosine of the query's embedding with each clip of item ``row``, computed without the head."""
    t = live.encoder.encode([query])[0]
    clips = live.moments.clips.clips(row) if live.moments else np.zeros((0, 1))
    return np.asarray(clips @ t / np.linalg.norm(clips, axis=1))


def test_moments_of_one_video(client: TestClient) -> None:
    r = client.post("/v1/moments", json={"query": QUERY, "video_id": "vid00003", "k": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["video_id"] == "vid00003" and body["collection"] == "demo" and body["duration"] > 0
    moments, sal = body["moments"], body["saliency"]
    assert 1 <= len(moments) <= 3
    assert [m["score"] for m in moments] == sorted((m["score"] for m in moments), reverse=True)
    assert all(0 <= m["start"] < m["end"] <= body["duration"] for m in moments)
    assert len(sal) == body["duration"] * 2  # clip rate 2/s, whole-second demo videos
    assert sal[0]["start"] == 0 and sal[-1]["end"] == body["duration"]
    assert all(a["end"] == b["start"] for a, b in zip(sal, sal[1:], strict=False))


def test_saliency_and_scores_equal_the_exact_oracle(client: TestClient) -> None:
    """Windows merged back into the video's seconds: the stand-in's numbers are recomputable per clip."""
    live = live_of(client)
    for vid in ("vid00000", "vid00007", "vid00011"):
        item = live.searcher.item_by_id(vid)
        assert item and live.moments and live.moments.clips.count(item.row) > SPAN  # really windowed
        body = client.post("/v1/moments", json={"query": QUERY, "video_id": vid, "k": 10}).json()
        cos = oracle_cosines(live, QUERY, item.row)
        np.testing.assert_allclose([s["score"] for s in body["saliency"]], cos, atol=1e-4)
        centres = (np.arange(len(cos)) + 0.5) / 2.0  # seconds
        for m in body["moments"]:
            inside = (centres >= m["start"] - 1e-3) & (centres < m["end"] - 1e-3)
            assert inside.any() and m["score"] == pytest.approx(cos[inside].mean(), abs=1e-4), (vid, m)


def test_k_beyond_the_clips_gives_all_there_are(client: TestClient) -> None:
    many = client.post("/v1/moments", json={"query": QUERY, "video_id": "vid00000", "k": 1000})
    assert many.status_code == 200
    n_clips = len(many.json()["saliency"])
    same = client.post("/v1/moments", json={"query": QUERY, "video_id": "vid00000", "k": n_clips}).json()
    assert 1 <= len(many.json()["moments"]) <= n_clips and many.json()["moments"] == same["moments"]


def test_batched_equals_one_video_at_a_time(client: TestClient) -> None:
    """Padding and masks change nothing: all videos in one call give each video's own answer."""
    head = live_of(client).moments
    assert head
    items = live_of(client).searcher.items(list(range(12)))
    videos = [(row, it.duration) for row, it in sorted(items.items()) if it.modality == "video"]
    assert len({head.clips.count(r) for r, _ in videos}) > 1  # different lengths, so rows are padded
    together = head.localize(QUERY, videos, 4)
    for video, got in zip(videos, together, strict=True):
        (alone,) = head.localize(QUERY, [video], 4)
        assert [(m.start, m.end) for m in got.moments] == [(m.start, m.end) for m in alone.moments]
        np.testing.assert_allclose([m.score for m in got.moments], [m.score for m in alone.moments], atol=1e-5)
        np.testing.assert_allclose(got.saliency, alone.saliency, atol=1e-5)


def test_search_with_moments_uses_one_head_call(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    head = live_of(client).moments
    assert head
    calls: list[int] = []
    queries: list[str] = []
    run, encode = head._run, head.encode_query
    monkeypatch.setattr(head, "_run", lambda *a: calls.append(len(a[1])) or run(*a))
    monkeypatch.setattr(head, "encode_query", lambda q: queries.append(q) or encode(q))
    body = client.post("/v1/search", json={"query": QUERY, "k": 10, "modality": "video", "moments": True}).json()
    assert len(calls) == 1 and calls[0] > 10  # every window of all 10 hits in one batch
    assert queries == [QUERY]  # the query graph (text tower) ran once for the request, not once per window
    assert body["moments_error"] is None and len(body["hits"]) == 10
    for hit in body["hits"]:
        assert 1 <= len(hit["moments"]) <= 3
        alone = client.post("/v1/moments", json={"query": QUERY, "video_id": hit["id"], "k": 3}).json()
        assert hit["moments"] == alone["moments"]
    two = client.post("/v1/search", json={"query": QUERY, "k": 130, "moments": 2}).json()["hits"]
    assert {h["modality"] for h in two} == {"video", "image"}
    assert all((h["moments"] is None) == (h["modality"] == "image") for h in two)
    assert all(len(h["moments"]) <= 2 for h in two if h["moments"] is not None)
    plain = client.post("/v1/search", json={"query": QUERY, "k": 3}).json()["hits"]
    assert all(h["moments"] is None for h in plain)


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"query": QUERY, "video_id": "vid99999"}, 404, "item 'vid99999' not found"),
        ({"query": QUERY, "video_id": "img00000"}, 422, "is an image, not a video"),
        ({"query": QUERY, "video_id": "vid00000", "collection": "nope"}, 404, "collection 'nope' not found"),
        ({"query": QUERY, "video_id": "img00000", "collection": "demo"}, 422, "is an image"),
        ({"query": QUERY, "video_id": "vid99999", "collection": "demo"}, 404, "not found in collection 'demo'"),
        ({"query": QUERY, "video_id": "vid00000", "k": 0}, 422, "k: Input should be greater than or equal to 1"),
        ({"query": QUERY, "video_id": "vid00000", "k": 1001}, 422, "k: Input should be less than or equal to 1000"),
        ({"query": "  ", "video_id": "vid00000"}, 422, "query is blank"),
        ({"query": "a" * 1001, "video_id": "vid00000"}, 422, "at most 1000 characters"),
        ({"query": QUERY}, 422, "video_id: Field required"),
        ({"query": QUERY, "video_id": ""}, 422, "video_id: String should have at least 1 character"),
        ({"query": QUERY, "video_id": "v" * 1025}, 422, "video_id: String should have at most 1024 characters"),
        ({"query": QUERY, "video_id": "vid00000", "start": 3}, 422, "start: Extra inputs are not permitted"),
        ({"query": QUERY, "video_id": "vid00000", "collection": "c" * 201}, 422, "collection: String should have"),
        ({"query": QUERY, "video_id": "vid00000", "k": "five"}, 422, "k: Input should be a valid integer"),
    ],
)
def test_bad_moments_requests_get_problem_json(
    client: TestClient, body: dict[str, object], status: int, fragment: str
) -> None:
    r = client.post("/v1/moments", json=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert fragment in r.json()["detail"]


@pytest.mark.parametrize("value", [0, -1, 21, "yes", 1.5, None])
def test_bad_search_moments_values_get_422(client: TestClient, value: object) -> None:
    r = client.post("/v1/search", json={"query": QUERY, "moments": value})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert "moments" in r.json()["detail"]


def test_search_with_moments_runs_the_text_tower_once(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """The head's query graph gives the search vector too (checked equal to the text encoder at load):
    the hits and scores of a moments search are the plain search's, and the text encoder does not run."""
    live = live_of(client)
    assert live.moments is not None and live.moments.shares_encoder
    body = {"query": QUERY, "k": 10, "modality": "video"}
    plain = client.post("/v1/search", json=body).json()["hits"]
    monkeypatch.setattr(live.encoder, "encode", lambda *_: pytest.fail("text encoder ran beside the query graph"))
    with_moments = client.post("/v1/search", json=body | {"moments": True}).json()["hits"]
    assert [h["id"] for h in with_moments] == [h["id"] for h in plain]
    np.testing.assert_allclose([h["score"] for h in with_moments], [h["score"] for h in plain], atol=1e-5)
    assert live.moments.check_shares(lambda texts: np.zeros((len(texts), 1), np.float32)) is False
    live.moments.shares_encoder = True


def test_search_with_moments_runs_the_text_tower_once_where_the_encoder_is_batched(
    moments_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same where the bundle's encoder is slow enough for the micro-batcher (here: every encoder): a
    moments search skips the batch, whose encoder pass the query graph would repeat (2026-12-07: it did,
    +5 ms a request on MiniLM), while a plain search still goes through it."""
    with client_for(moments_root, batch_min_encode_ms=0) as c:
        live = live_of(c)
        assert live.moments is not None and live.moments.shares_encoder
        calls: list[int] = []
        encode, query_graph = live.encoder.encode, live.moments.encode_query
        monkeypatch.setattr(live.encoder, "encode", lambda texts: calls.append(len(texts)) or encode(texts))
        monkeypatch.setattr(live.moments, "encode_query", lambda q: calls.append(-1) or query_graph(q))
        body = {"query": QUERY, "k": 10, "modality": "video"}
        plain = c.post("/v1/search", json=body).json()["hits"]
        assert calls == [1]  # the batch's encoder pass
        r = c.post("/v1/search", json=body | {"moments": True})
        assert r.status_code == 200 and calls == [1, -1]  # the query graph alone: no second text-tower pass
    with_moments = r.json()["hits"]
    assert [h["id"] for h in with_moments] == [h["id"] for h in plain]
    assert all(h["moments"] for h in with_moments)


def test_one_graph_head_of_schema_3_still_serves_the_same_moments(
    client: TestClient, bundle_root: Path, trained_run: Path, tmp_path: Path
) -> None:
    """A bundle built before the head was split (schema 3: one graph taking the query's ids) loads and
    answers exactly as the split graphs of the same head do."""
    root = tmp_path / "root"
    shutil.copytree(bundle_root, root)
    path = republish_with_head(root, "demo", trained_run, span_clips=SPAN, legacy=True)
    manifest = bundle.read_manifest(path)
    assert manifest["schema_version"] == 3 and "query_graph" not in manifest["moment_head"]
    assert bundle.MOMENT_QUERY not in manifest["files"]
    with client_for(root, batch_min_encode_ms=1e9) as old:
        assert live_of(old).moments is not None and live_of(old).moments.query is None  # type: ignore[union-attr]
        for vid in ("vid00003", "vid00010"):
            body = {"query": QUERY, "video_id": vid, "k": 3}
            got, want = old.post("/v1/moments", json=body).json(), client.post("/v1/moments", json=body).json()
            assert [(m["start"], m["end"]) for m in got["moments"]] == [(m["start"], m["end"]) for m in want["moments"]]
            np.testing.assert_allclose(
                [m["score"] for m in got["moments"]], [m["score"] for m in want["moments"]], atol=1e-5
            )


def test_bundle_without_a_head_serves_search_and_says_why_no_moments(bundle_root: Path) -> None:
    with client_for(bundle_root) as c:
        assert c.app.state.store.live["demo"].moments is None  # type: ignore[attr-defined]
        r = c.post("/v1/moments", json={"query": QUERY, "video_id": "vid00000"})
        assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
        assert "has no moment head (moment_head.onnx)" in r.json()["detail"]
        body = c.post("/v1/search", json={"query": QUERY, "k": 5, "moments": True}).json()
        assert len(body["hits"]) == 5 and all(h["moments"] is None for h in body["hits"])
        assert "has no moment head" in body["moments_error"]


NO_TORCH = """
import sys
from fastapi.testclient import TestClient
from xmr.cli import build_app
build_app("serve-moments")  # what `xmr serve-moments` imports
from service.config import Settings
from service.main import create_app
with TestClient(create_app(Settings(root=sys.argv[1], poll_seconds=0))) as c:
    r = c.post("/v1/moments", json={"query": "a red 7 moves left", "video_id": "vid00001"})
    assert r.status_code == 200 and r.json()["moments"], r.text
    r = c.post("/v1/search", json={"query": "a red 7 moves left", "k": 3, "moments": True})
    assert r.status_code == 200 and r.json()["hits"][0]["moments"], r.text
leaked = sorted(m for m in sys.modules if m == "torch" or m.startswith(("torch.", "models.")))
print("LEAKED", leaked)
"""


def test_moments_path_never_imports_torch(moments_root: Path) -> None:
    out = subprocess.run([sys.executable, "-c", NO_TORCH, str(moments_root)], capture_output=True, text=True)
    assert "LEAKED []" in out.stdout, out.stdout + out.stderr


def test_openapi_documents_moments(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/v1/moments", "/v1/moments/batch"} <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    assert schemas["MomentsRequest"]["examples"][0]["video_id"] == "vid00042"
    assert {"start", "end", "score"} <= set(schemas["Moment"]["properties"])
    assert "moments" in schemas["SearchRequest"]["properties"] and "moments" in schemas["Hit"]["properties"]


def one_window_each(head: MomentHead, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make every demo video one window of ``head`` (this bundle's span of 6 clips cuts them in several) and
    count the calls of the one-window fast path, so a test knows which path it compared."""
    monkeypatch.setattr(head, "span", 64)
    calls: list[int] = []
    single = head._localize_single

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return single(*args, **kwargs)

    monkeypatch.setattr(head, "_localize_single", counted)
    return calls


def test_one_window_fast_path_equals_the_general_merge(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Search hits (no saliency, one window per video) skip the per-video merge; their moments must be the
    general path's (saliency on) exactly, for every k, including k beyond the head's candidates."""
    head = live_of(client).moments
    assert head is not None
    calls = one_window_each(head, monkeypatch)
    items = live_of(client).searcher.items(list(range(12)))
    videos = [(row, it.duration) for row, it in sorted(items.items()) if it.modality == "video"]
    for query in ("a red 7 moves left", "a blue 3 appears, then a green 1 moves up", "x"):
        for k in (1, 3, 50):
            fast = head.localize(query, videos, k, saliency=False)
            general = head.localize(query, videos, k, saliency=True)
            assert [f.moments for f in fast] == [g.moments for g in general]
            assert all(len(f.saliency) == 0 for f in fast)
    assert len(calls) == 9  # every saliency=False call took the fast path
    assert head.localize(QUERY, [], 3, saliency=False) == head.localize(QUERY, [], 3) == []  # a page of images


def test_fast_path_equals_the_general_merge_on_overlapping_spans(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same check where NMS has work to do: the head's output replaced by seeded random spans (many
    overlapping by IoU > 0.5, tied scores, spans past the video's end), the same for both paths."""
    head = live_of(client).moments
    assert head is not None
    calls = one_window_each(head, monkeypatch)
    items = live_of(client).searcher.items(list(range(12)))
    videos = [(row, it.duration) for row, it in sorted(items.items()) if it.modality == "video"]

    def fake_run(query: dict[str, np.ndarray], chunk: list[tuple[int, int, int]]) -> list[np.ndarray]:
        rng = np.random.default_rng([row for row, _, _ in chunk])
        centre = np.concatenate([rng.uniform(0.4, 0.6, (len(chunk), 15)), rng.uniform(0, 1.1, (len(chunk), 5))], 1)
        width = rng.uniform(0.2, 0.5, (len(chunk), 20))  # the 15 clustered ones overlap each other heavily
        spans = np.stack([centre - width / 2, centre + width / 2], -1).clip(0, 1.2).astype(np.float32)
        scores = rng.choice([0.1, 0.5, 0.5, 0.9], (len(chunk), 20)).astype(np.float32)  # ties
        return [spans, scores, np.zeros((len(chunk), max(b - a for _, a, b in chunk)), np.float32)]

    monkeypatch.setattr(head, "_run_windows", fake_run)
    for k in (1, 3, 7, 50):
        fast = head.localize(QUERY, videos, k, saliency=False)
        general = head.localize(QUERY, videos, k, saliency=True)
        assert [f.moments for f in fast] == [g.moments for g in general]
    assert len(calls) == 4
    caps = [min(20, head.clips.count(row)) for row, _ in videos]
    assert any(len(f.moments) < cap for f, cap in zip(fast, caps, strict=True))  # NMS had spans to drop


def test_search_with_moments_whose_hits_are_all_images(client: TestClient) -> None:
    """No video hit, no head call: a page of images answers 200 with no moments (it crashed once the
    one-window fast path took an empty page)."""
    r = client.post("/v1/search", json={"query": QUERY, "k": 5, "modality": "image", "moments": True})
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]
    assert hits and all(h["modality"] == "image" and h["moments"] is None for h in hits)
