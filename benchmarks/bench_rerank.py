"""ProTA re-ranking in the service: added latency (same-run A/B), memory per video, and what it buys.

    python benchmarks/bench_rerank.py --root bundles-videotext --data data/videotext [--requests 1000]

One bundle, two ways through the endpoint's own ``encode_and_rank``: plain (FAISS top-k of the
global vectors) and re-ranked (FAISS top ``candidates``, re-scored by rerank.onnx from the clips/
features). Requests alternate A/B so both see the same machine state; only ratios are results.
Quality: each held-out whole-video caption against all indexed videos, both ways.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import bundle  # noqa: E402
from benchmarks.report import percentiles, write_section  # noqa: E402
from models.metrics import retrieval_metrics  # noqa: E402
from service.api.routes.search import encode_and_rank  # noqa: E402
from service.metrics import Metrics  # noqa: E402
from service.schemas import SearchRequest  # noqa: E402
from service.store import LoadedBundle, load_bundle  # noqa: E402


def held_out(data: Path, split: str) -> list[tuple[str, str]]:
    """(whole-video caption, video id) of every video of ``split``."""
    items = [json.loads(x) for x in (data / "manifest.jsonl").read_text().splitlines()]
    return [(i["captions"][0]["caption"], i["id"]) for i in items if i["modality"] == "video" and i["split"] == split]


def latencies(ways: dict[str, LoadedBundle], queries: list[str], n: int, k: int) -> dict[str, list[float]]:
    metrics, out = Metrics(), {name: [] for name in ways}
    for i in range(n):
        for name in list(ways)[:: 1 if i % 2 else -1]:  # alternate who goes first
            req = SearchRequest(query=queries[i % len(queries)], k=k, modality="video")
            t0 = time.perf_counter()
            encode_and_rank(ways[name], req, metrics, t0)
            out[name].append(time.perf_counter() - t0)
    return out


def quality(live: LoadedBundle, queries: list[tuple[str, str]], n_videos: int) -> dict[str, float]:
    ranks = []
    for q, gt in queries:
        hits = encode_and_rank(live, SearchRequest(query=q, k=n_videos, modality="video"), Metrics(), 0.0).hits
        ids = [h.id for h in hits]
        ranks.append(ids.index(gt) if gt in ids else n_videos)
    return retrieval_metrics(np.array(ranks))


def memory(live: LoadedBundle) -> str:
    clips = live.reranker.clips if live.reranker else bundle.ClipStore(live.path)
    videos = live.searcher.rows_by_modality["video"]
    frames = float(np.mean([clips.count(int(r)) for r in videos]))
    per_video = frames * clips.features.shape[1] * clips.features.itemsize
    onnx = (live.path / bundle.RERANK).stat().st_size
    return (
        f"per video: {per_video / 1024:.2f} KiB of token features (mean {frames:.1f} "
        f"frames x {clips.features.shape[1]} dims x float16; these are the bundle's clips/, which every bundle "
        f"already stores, so re-ranking adds no per-video memory) vs {live.manifest['dim'] * 4} B for the FAISS "
        f"vector; once per bundle: rerank.onnx {onnx / 1024:.0f} KiB."
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, default=Path("bundles-videotext"))
    ap.add_argument("--data", type=Path, default=Path("data/videotext"))
    ap.add_argument("--collection", default="demo")
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--k", type=int, default=10)
    args = ap.parse_args()
    live = load_bundle(args.root / args.collection / str(bundle.read_current(args.root, args.collection)))
    if live.reranker is None:
        raise SystemExit(f"{live.path}: no re-ranker in this bundle (build it from a ProTA run)")
    ways = {"plain (FAISS top-k)": dataclasses.replace(live, reranker=None), "re-ranked": live}
    queries = held_out(args.data, "test")
    lat = latencies(ways, [q for q, _ in queries], args.requests, args.k)
    n_videos = len(live.searcher.rows_by_modality["video"])
    base = np.median(lat["plain (FAISS top-k)"])
    rows = [
        "| path | p50 ms | p99 ms | p50 vs plain | t2v R@1 | R@5 | R@10 | MdR |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, way in ways.items():
        p50, p99 = percentiles(lat[name])
        q = quality(way, queries, n_videos)
        rows.append(
            f"| {name} | {p50:.2f} | {p99:.2f} | {np.median(lat[name]) / base:.2f} | {q['R@1']:.1f} | "
            f"{q['R@5']:.1f} | {q['R@10']:.1f} | {q['MdR']:.1f} |"
        )
    cmd = f"python benchmarks/bench_rerank.py --root {args.root} --data {args.data} --requests {args.requests}"
    body = (
        f"Collection `{args.collection}` built from a ProTA run ({live.model_id}): {n_videos} videos, exact `Flat` "
        f"index, re-ranking the top {live.reranker.candidates} FAISS hits, k = {args.k}, {args.requests} "
        f"requests per path, A/B alternating, in-process `encode_and_rank`, one ONNX thread. Quality: the "
        f"{len(queries)} held-out whole-video captions against all {n_videos} videos.\n\nCommand: `{cmd}`\n\n"
        + "\n".join(rows)
        + f"\n\nMemory: {memory(live)}"
    )
    write_section("rerank", body)
    print(body)  # noqa: T201  (the benchmark's output)


if __name__ == "__main__":
    main()
