"""A/B of two versions of the service in one run: the working tree vs a git revision.

    python benchmarks/ab_server.py --base HEAD~1 [--rounds 3] [--seconds 4] [--workers 2 --base-workers 2]

Both servers run at once on the same bundle; wrk (8 connections) alternates between them, and
who goes first alternates by round, so machine noise and warm-up hit both alike. Reports req/s
for GET /healthz (the web-layer floor) and POST /v1/search, the ratio candidate/base, and the
servers' CPU ms per search (all their processes, from /proc: on a busy VM it moves less than
wall time). An endpoint the change does not touch (usually /healthz) shows the resolution of the run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_search import WRK_LUA  # noqa: E402
from benchmarks.loadgen import tree_cpu  # noqa: E402
from tests.harness import start_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def serve(src: Path, root: Path, workers: int = 1) -> tuple[subprocess.Popen[bytes], str]:
    """``xmr serve`` running the code in ``src`` (PYTHONPATH comes before the editable install)."""
    return start_server(root, PYTHONPATH=str(src), OMP_NUM_THREADS="1", XMR_WORKERS=str(workers))


def wrk(url: str, seconds: int, lua: str | None, pid: int) -> tuple[float, float]:
    """(requests/s, the server's CPU ms per request)."""
    cmd = ["wrk", "-t1", "-c8", f"-d{seconds}s", *(["-s", lua] if lua else []), url]
    cpu0 = tree_cpu(pid)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    cpu = tree_cpu(pid) - cpu0
    assert "Non-2xx" not in out, out
    rate = float(out.split("Requests/sec:")[1].split()[0])
    return rate, cpu * 1000 / (rate * seconds)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help="git revision to compare the working tree against")
    ap.add_argument("--root", type=Path, default=ROOT / "bundles")
    ap.add_argument("--collection", default="demo")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1, help="the candidate's XMR_WORKERS")
    ap.add_argument("--base-workers", type=int, default=1, help="the base's XMR_WORKERS (revisions before it: 1)")
    ap.add_argument("--seconds", type=int, default=4)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(WRK_LUA.replace("COLLECTION", args.collection))
        lua.flush()
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", tmp, args.base], check=True)
        procs = []
        try:
            pa, base = serve(Path(tmp), args.root, args.base_workers)
            pb, cand = serve(ROOT, args.root, args.workers)
            procs = [pa, pb]
            rows: dict[tuple[str, str], list[tuple[float, float]]] = {}
            for r in range(args.rounds):
                order = [("base", base, pa.pid), ("candidate", cand, pb.pid)]
                for name, url, pid in order if r % 2 == 0 else order[::-1]:  # alternate who goes first
                    rows.setdefault((name, "healthz"), []).append(wrk(f"{url}/healthz", args.seconds, None, pid))
                    search = wrk(f"{url}/v1/search", args.seconds, lua.name, pid)
                    rows.setdefault((name, "search"), []).append(search)
        finally:
            for p in procs:
                p.terminate()
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", tmp], check=False)
    print(
        f"| endpoint | base ({args.base}, {args.base_workers} worker(s)) req/s | candidate (working tree, "
        f"{args.workers} worker(s)) req/s | candidate / base | base CPU ms/request | candidate CPU ms/request |"
    )
    print("|---|---|---|---|---|---|")
    for ep in ("healthz", "search"):
        (b, bc), (c, cc) = (
            (statistics.median(x[0] for x in rows[(n, ep)]), statistics.median(x[1] for x in rows[(n, ep)]))
            for n in ("base", "candidate")
        )
        print(f"| {ep} | {b:.0f} | {c:.0f} | {c / b:.2f} | {bc:.3f} | {cc:.3f} |")


if __name__ == "__main__":
    main()
