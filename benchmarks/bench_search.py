"""/v1/search over HTTP (real uvicorn) vs the same encode + search in-process, on the demo bundle.

    python benchmarks/bench_search.py --root bundles --data data/demo [--requests 2000]

The ratio HTTP/in-process is what counts: it is the cost of the web layer.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

import bundle  # noqa: E402
from benchmarks.report import bundle_manifest, describe_index, percentiles, write_section  # noqa: E402
from service.api.routes.search import encode_and_rank  # noqa: E402
from service.metrics import Metrics  # noqa: E402
from service.schemas import SearchRequest  # noqa: E402
from service.store import load_bundle  # noqa: E402
from tests.harness import start_server  # noqa: E402


def captions(data: Path) -> list[str]:
    items = [json.loads(x) for x in (data / "manifest.jsonl").read_text().splitlines()]
    return [c["caption"] for i in items if i["split"] == "test" for c in i["captions"]]


def in_process(root: Path, collection: str, queries: list[str], n: int) -> list[float]:
    """The endpoint's own encode + search + join (``encode_and_rank``), called without HTTP."""
    live = load_bundle(root / collection / bundle.read_current(root, collection))
    metrics = Metrics()
    lat = []
    for i in range(n):
        t0 = time.perf_counter()
        encode_and_rank(live, SearchRequest(query=queries[i % len(queries)], k=10, collection=collection), metrics, t0)
        lat.append(time.perf_counter() - t0)
    return lat


def over_http(url: str, collection: str, queries: list[str], n: int, clients: int) -> tuple[list[float], float]:
    def worker(k: int) -> list[float]:
        lat = []
        with httpx.Client(base_url=url, timeout=30) as http:
            for i in range(k, n, clients):
                t0 = time.perf_counter()
                r = http.post(
                    "/v1/search", json={"query": queries[i % len(queries)], "k": 10, "collection": collection}
                )
                r.raise_for_status()
                lat.append(time.perf_counter() - t0)
        return lat

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        lat = [x for part in pool.map(worker, range(clients)) for x in part]
    return lat, time.perf_counter() - t0


WRK_LUA = """wrk.method = "POST"
wrk.body = '{"query": "a red 7 moves left, then a blue 3 appears", "k": 10, "collection": "COLLECTION"}'
wrk.headers["Content-Type"] = "application/json"
"""


def with_wrk(url: str, collection: str, connections: int, seconds: int = 10) -> tuple[float, float, float] | None:
    """(queries/s, p50 ms, p99 ms) from wrk, a C load generator, or None when wrk is not installed."""
    if not shutil.which("wrk"):
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(WRK_LUA.replace("COLLECTION", collection))
        lua.flush()
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", lua.name, f"{url}/v1/search"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    def ms(label: str) -> float:
        value = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert value, out
        return float(value.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[value.group(2)]

    qps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert qps and "Non-2xx" not in out, out
    return float(qps.group(1)), ms("50%"), ms("99%")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, default=Path("bundles"))
    ap.add_argument("--data", type=Path, default=Path("data/demo"))
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--collection", default="demo")
    args = ap.parse_args()
    queries = captions(args.data)
    rows = []
    lat = in_process(args.root, args.collection, queries, args.requests)
    base_qps = len(lat) / sum(lat)
    rows.append(("in-process encode+search (no HTTP)", 1, base_qps, *percentiles(lat)))
    proc, url = start_server(args.root)
    try:
        over_http(url, args.collection, queries, 100, 1)  # warm-up
        for clients in (1, 4):
            lat, wall = over_http(url, args.collection, queries, args.requests, clients)
            rows.append(
                (f"POST /v1/search, httpx client, {clients} thread(s)", clients, len(lat) / wall, *percentiles(lat))
            )
        for conns in (1, 8):
            got = with_wrk(url, args.collection, conns)
            if got:
                rows.append((f"POST /v1/search, wrk, {conns} connection(s)", conns, *got))
    finally:
        proc.terminate()
        proc.wait()
    index = describe_index(bundle_manifest(args.root, args.collection))
    lines = ["| path | clients | queries/s | p50 ms | p99 ms | queries/s vs in-process |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {name} | {c} | {qps:.0f} | {p50:.2f} | {p99:.2f} | {qps / base_qps:.2f} |"
        for name, c, qps, p50, p99 in rows
    ]
    body = (
        f"Collection `{args.collection}`: {index}; "
        f"query = a test caption, k = 10, "
        f"{args.requests} requests per httpx row (wrk: 10 s, one fixed query), `OMP_NUM_THREADS=1`, one uvicorn "
        f"worker; the clients run on the same machine as the server.\n\n"
        f"Command: `python benchmarks/bench_search.py --root {args.root} --data {args.data} "
        f"--collection {args.collection} --requests {args.requests}`\n\n" + "\n".join(lines)
    )
    write_section("search" if args.collection == "demo" else f"search-{args.collection}", body)
    print(body)


if __name__ == "__main__":
    main()
