"""Moments cost: /v1/search with ``moments: true`` vs plain (k = 10), and /v1/moments on a 30-minute video.

    python benchmarks/bench_moments.py --root bundles --data data/demo --run runs/demo [--requests 300]

Both searches run against one real uvicorn, interleaved request by request (so both see the same
machine state); the ratio of their latencies is the result. The collection is copied to a temporary
root; when its bundle has no moment head, the stand-in head (tests/standin_moment_head.py, a sliding-
window scorer over the run's text/clip similarity) is added, and the table says which head ran.
The 30-minute video is tests/long_video_bundle.py's (real mp4, the run's clip features).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

import bundle  # noqa: E402
from benchmarks.bench_search import captions  # noqa: E402
from benchmarks.report import percentiles, write_section  # noqa: E402
from tests.harness import start_server  # noqa: E402
from tests.long_video_bundle import build_long_bundle  # noqa: E402
from tests.standin_moment_head import NAME, republish_with_head  # noqa: E402


def prepare(root: Path, collection: str, run: Path, tmp: Path) -> tuple[Path, str]:
    """A copy of ``collection`` with a moment head (its own, else the stand-in) plus the long video
    (indexed from ``run``: the run's head if it has one, else the stand-in). Returns the root and which heads."""
    dst = tmp / "root"
    shutil.copytree(root / collection, dst / collection, ignore=shutil.ignore_patterns(".staging-*", ".work"))
    if "moment_head" not in live_manifest(dst, collection):
        republish_with_head(dst, collection, run)
    long = build_long_bundle(dst, run)
    names = [live_manifest(dst, c)["moment_head"]["name"] for c in (collection, long.collection)]
    return dst, f"`{names[0]}` (search), `{names[1]}` (30-minute video); `{NAME}` is tests/standin_moment_head.py"


def live_manifest(root: Path, collection: str) -> dict[str, Any]:
    return bundle.read_manifest(root / collection / str(bundle.read_current(root, collection)))


SERVER_MS: dict[str, list[float]] = {}  # path + moments flag -> the server's own took_ms per request
MOMENT_HITS: list[int] = []  # per search with moments: how many of its hits carry moments


def timed(http: httpx.Client, path: str, body: dict[str, object]) -> float:
    """Seconds the client waited; the server's ``took_ms`` is kept in SERVER_MS."""
    t0 = time.perf_counter()
    r = http.post(path, json=body)
    r.raise_for_status()
    took = time.perf_counter() - t0
    answer = r.json()
    SERVER_MS.setdefault(f"{path} {bool(body.get('moments'))}", []).append(float(answer["took_ms"]))
    if path == "/v1/search" and body.get("moments"):  # that the head really ran: hits that got moments
        MOMENT_HITS.append(sum(bool(h.get("moments")) for h in answer["hits"]))
    return took


def searches(
    url: str, collection: str, queries: list[str], n: int, modality: str | None = None
) -> tuple[list[float], list[float]]:
    """Latencies (s) of plain and moments searches, alternating which goes first."""
    plain, moments = [], []
    with httpx.Client(base_url=url, timeout=60) as http:
        for i in range(n):
            body: dict[str, object] = {"query": queries[i % len(queries)], "k": 10, "collection": collection}
            if modality:
                body["modality"] = modality
            order = [(plain, body), (moments, body | {"moments": True})]
            for out, b in order if i % 2 else order[::-1]:
                out.append(timed(http, "/v1/search", b))
    return plain, moments


def long_moments(url: str, queries: list[str], n: int) -> list[float]:
    with httpx.Client(base_url=url, timeout=60) as http:
        body = {"video_id": "long30", "collection": "long", "k": 5}
        return [timed(http, "/v1/moments", body | {"query": queries[i % len(queries)]}) for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, default=Path("bundles"))
    ap.add_argument("--data", type=Path, default=Path("data/demo"))
    ap.add_argument("--run", type=Path, default=Path("runs/demo"))
    ap.add_argument("--collection", default="demo")
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--modality", choices=["video", "image"], help="searches' modality filter (default: none)")
    ap.add_argument("--section", default="moments", help="docs/benchmarks.md section to write (one per head compared).")
    args = ap.parse_args()
    queries = captions(args.data)
    with tempfile.TemporaryDirectory(prefix="xmr-bench-moments-") as tmp:
        root, head = prepare(args.root, args.collection, args.run, Path(tmp))
        span = int(live_manifest(root, "long")["moment_head"]["span_clips"])
        proc, url = start_server(root)
        try:
            searches(url, args.collection, queries, 30, args.modality)  # warm-up
            long_moments(url, queries, 5)
            plain, with_moments, ratios = [], [], []
            for _ in range(args.rounds):  # the machine is shared: a ratio per round shows how much it moves
                p, m = searches(url, args.collection, queries, args.requests // args.rounds, args.modality)
                plain, with_moments = plain + p, with_moments + m
                ratios.append(percentiles(m)[0] / percentiles(p)[0])
            long = long_moments(url, ["a red 7 moves left", *queries], max(20, args.requests // 10))
        finally:
            proc.terminate()
            proc.wait()
    measured = MOMENT_HITS[-len(with_moments) :]
    if not any(measured):
        raise SystemExit("no search hit carried moments (image hits only?): the ratio would not measure the head")
    base = percentiles(plain)
    rows = [
        ("POST /v1/search, k = 10", plain, "/v1/search False"),
        ("POST /v1/search, k = 10, `moments: true` (3 per video hit)", with_moments, "/v1/search True"),
        (f"POST /v1/moments, 30-minute video (3600 clips, windows of {span}), k = 5", long, "/v1/moments False"),
    ]
    lines = [
        "| request | n | p50 ms | p99 ms | mean ms | p50 vs plain search | server's took_ms, p50 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, lat, key in rows:
        p50, p99 = percentiles(lat)
        took = statistics.median(SERVER_MS[key][-len(lat) :])  # the measured requests, not the warm-up
        lines.append(
            f"| {name} | {len(lat)} | {p50:.2f} | {p99:.2f} | {1000 * sum(lat) / len(lat):.2f} | {p50 / base[0]:.2f} "
            f"| {took:.2f} |"
        )
    n_items = sum(
        bundle.read_manifest(args.root / args.collection / str(bundle.read_current(args.root, args.collection)))
        .get("counts", {})
        .values()
    )
    body = (
        f"Collection `{args.collection}` ({n_items} items); moment heads: {head}; one uvicorn worker, "
        "one sequential httpx client on the same machine, plain and moments searches interleaved request by "
        "request, `OMP_NUM_THREADS=1`; query = a test caption"
        + (f", `modality: {args.modality}`" if args.modality else "")
        + f"; hits per search with moments that carry moments: {statistics.mean(measured):.1f} of 10.\n\n"
        f"Command: `python benchmarks/bench_moments.py --root {args.root} --data {args.data} --run {args.run} "
        f"--collection {args.collection} --requests {args.requests} --rounds {args.rounds}"
        + (f" --modality {args.modality}" if args.modality else "")
        + (f" --section {args.section}" if args.section != "moments" else "")
        + "`\n\n"
        + "\n".join(lines)
        + f"\n\nSearch with moments ÷ plain, p50 per round of {args.requests // args.rounds} pairs: median "
        f"{statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f}; goal <= 1.5)."
    )
    write_section(args.section, body)
    print(body)  # noqa: T201


if __name__ == "__main__":
    main()
