"""A/B of two versions of the service in one run: the working tree vs a git revision.

    python benchmarks/ab_server.py --base HEAD~1 [--rounds 3] [--seconds 4]

Both servers run at once on the same bundle; wrk (8 connections) alternates between them, and
who goes first alternates by round, so machine noise and warm-up hit both alike. Reports req/s
for GET /healthz (the web-layer floor) and POST /v1/search, and the ratio candidate/base. An
endpoint the change does not touch (usually /healthz) shows the resolution of the run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_search import WRK_LUA  # noqa: E402
from tests.harness import start_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def serve(src: Path, root: Path, workers: int = 1) -> tuple[subprocess.Popen[bytes], str]:
    """``xmr serve`` running the code in ``src`` (PYTHONPATH comes before the editable install)."""
    return start_server(root, PYTHONPATH=str(src), OMP_NUM_THREADS="1", XMR_WORKERS=str(workers))


def wrk(url: str, seconds: int, lua: str | None) -> float:
    cmd = ["wrk", "-t1", "-c8", f"-d{seconds}s", *(["-s", lua] if lua else []), url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert "Non-2xx" not in out, out
    return float(out.split("Requests/sec:")[1].split()[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help="git revision to compare the working tree against")
    ap.add_argument("--root", type=Path, default=ROOT / "bundles")
    ap.add_argument("--collection", default="demo")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1, help="the candidate's XMR_WORKERS (revisions before it: 1)")
    ap.add_argument("--seconds", type=int, default=4)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(WRK_LUA.replace("COLLECTION", args.collection))
        lua.flush()
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", tmp, args.base], check=True)
        procs = []
        try:
            (pa, base), (pb, cand) = serve(Path(tmp), args.root), serve(ROOT, args.root, args.workers)
            procs = [pa, pb]
            rows: dict[tuple[str, str], list[float]] = {}
            for r in range(args.rounds):
                order = [("base", base), ("candidate", cand)]
                for name, url in order if r % 2 == 0 else order[::-1]:  # alternate who goes first
                    rows.setdefault((name, "healthz"), []).append(wrk(f"{url}/healthz", args.seconds, None))
                    rows.setdefault((name, "search"), []).append(wrk(f"{url}/v1/search", args.seconds, lua.name))
        finally:
            for p in procs:
                p.terminate()
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", tmp], check=False)
    print(f"| endpoint | base ({args.base}) req/s | candidate (working tree) req/s | candidate / base |")
    print("|---|---|---|---|")
    for ep in ("healthz", "search"):
        b, c = (sum(rows[(n, ep)]) / args.rounds for n in ("base", "candidate"))
        print(f"| {ep} | {b:.0f} | {c:.0f} | {c / b:.2f} |")


if __name__ == "__main__":
    main()
