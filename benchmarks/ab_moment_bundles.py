"""In-process A/B of two versions of one collection: what moments add to a search, and where it goes.

    python benchmarks/ab_moment_bundles.py --collection bundles-serve/demo --base VERSION [--candidate VERSION]

Both versions are loaded in one process (``service.store.load_bundle``) and the same request path the
service runs (``encode_and_rank``) is timed on test captions, k = 10, plain and with ``moments: true``,
rounds alternating which version goes first. Per version: the median ms of each, the added ms, and the
moments stages (query graph, window graph, the rest of ``localize``) from wrappers around the head's
methods. The candidate defaults to the collection's CURRENT. No HTTP: this isolates the head's cost
from the VM's idle penalty (docs/benchmarks.md, "Service").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.api.routes.search import encode_and_rank  # noqa: E402
from service.metrics import Metrics  # noqa: E402
from service.schemas import SearchRequest  # noqa: E402
from service.store import LoadedBundle, load_bundle  # noqa: E402


def timed_stages(live: LoadedBundle, spent: dict[str, float]) -> None:
    """Wrap the head's stages so each call adds its seconds to ``spent``."""
    head = live.moments
    assert head is not None, f"{live.path} has no moment head"
    for attr, stage in (("encode_query", "query graph"), ("_run", "window graph"), ("localize", "localize")):
        inner: Callable[..., Any] = getattr(head, attr)

        def wrapped(*a: Any, _f: Callable[..., Any] = inner, _s: str = stage, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return _f(*a, **k)
            finally:
                spent[_s] = spent.get(_s, 0.0) + time.perf_counter() - t

        setattr(head, attr, wrapped)


def run(live: LoadedBundle, queries: list[str], moments: bool, metrics: Metrics) -> float:
    """Median ms of ``encode_and_rank`` over ``queries``."""
    ms = []
    for q in queries:
        req = SearchRequest(query=q, k=10, moments=moments)
        t = time.perf_counter()
        encode_and_rank(live, req, metrics, t, None)
        ms.append((time.perf_counter() - t) * 1000)
    return statistics.median(ms)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--collection", type=Path, required=True, help="<root>/<collection> folder")
    ap.add_argument("--base", required=True, help="version folder name to compare against")
    ap.add_argument("--candidate", help="version folder name (default: CURRENT)")
    ap.add_argument("--data", type=Path, default=Path("data/demo"), help="test captions: <data>/moments_test.jsonl")
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args()
    candidate = args.candidate or (args.collection / "CURRENT").read_text().strip()
    lines = (args.data / "moments_test.jsonl").read_text().splitlines()
    queries = [json.loads(line)["query"] for line in lines][:50] * 2
    lives = {"base": load_bundle(args.collection / args.base), "candidate": load_bundle(args.collection / candidate)}
    metrics = Metrics()
    for live in lives.values():  # warm-up
        run(live, queries[:20], False, metrics)
        run(live, queries[:20], True, metrics)
    times: dict[str, dict[bool, list[float]]] = {k: {False: [], True: []} for k in lives}
    for r in range(args.rounds):
        for name in list(lives) if r % 2 else list(lives)[::-1]:
            for moments in (False, True):
                times[name][moments].append(run(lives[name], queries, moments, metrics))
    stages: dict[str, dict[str, float]] = {}
    for name, live in lives.items():
        spent: dict[str, float] = {}
        timed_stages(live, spent)
        run(live, queries, True, metrics)
        stages[name] = {k: v * 1000 / len(queries) for k, v in spent.items()}
    cols = ["version", "schema", "plain ms", "with moments ms", "added ms", "query graph", "window graph"]
    print("| " + " | ".join([*cols, "rest of localize"]) + " |")
    print("|---|---|---|---|---|---|---|---|")
    for name, live in lives.items():
        plain, with_moments = (statistics.median(times[name][m]) for m in (False, True))
        s = stages[name]
        print(
            f"| {name}: `{live.version}` | {live.manifest['schema_version']} | {plain:.3f} | {with_moments:.3f} "
            f"| {with_moments - plain:.3f} | {s['query graph']:.3f} | {s['window graph']:.3f} "
            f"| {s['localize'] - s['window graph']:.3f} |"
        )


if __name__ == "__main__":
    main()
