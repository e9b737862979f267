"""Load generation and servers for the service benchmarks: wrk with its own CPU accounted, the bare
FastAPI ceiling on uvicorn, ``xmr serve`` with N workers, and per-process memory (RSS, PSS)."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.harness import free_port, start_server, stop, worker_pids  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
QUERY = "a red 7 moves left, then a blue 3 appears"


@dataclass
class WrkResult:
    qps: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    cpu_share: float  # wrk's own CPU seconds / (wall seconds x cores): what the load generator took
    server_cpu_ms: float = float("nan")  # the server's CPU ms per request (all its processes), if given its pid


def tree_cpu(pid: int) -> float:
    """CPU seconds used so far by process ``pid`` and its live children (uvicorn's workers)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    total = 0
    for p in [pid, *map(int, children)]:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (stat fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def wrk(url: str, connections: int, seconds: float, collection: str, server_pid: int | None = None) -> WrkResult:
    """POST /v1/search with one fixed query from ``connections`` keep-alive connections (wrk, 1 thread).

    With ``server_pid``, also the server's CPU per request: unlike wall time, it barely moves with
    what else a busy machine runs."""
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (Debian: apt-get install -y wrk)")
    body = json.dumps({"query": QUERY, "k": 10, "collection": collection})
    lua = f"wrk.method = 'POST'\nwrk.body = '{body}'\nwrk.headers['Content-Type'] = 'application/json'\n"
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(lua)
        script.flush()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        server_before = tree_cpu(server_pid) if server_pid else 0.0
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", script.name, f"{url}/v1/search"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        server_cpu = tree_cpu(server_pid) - server_before if server_pid else float("nan")
    assert "Non-2xx" not in out and "Socket errors" not in out, out
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    def ms(label: str) -> float:
        value = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\b", out, re.M)
        assert value, out
        return float(value.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[value.group(2)]

    qps = float(re.findall(r"Requests/sec:\s+([\d.]+)", out)[0])
    cores = os.cpu_count() or 1
    per_request = server_cpu * 1000 / (qps * seconds)
    return WrkResult(qps, ms("50%"), ms("99%"), connections * 1000 / qps, cpu / (seconds * cores), per_request)


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        time.sleep(0.02)
    raise RuntimeError(f"{url} not ready in {timeout} s")


def start_bare(workers: int = 1) -> tuple[subprocess.Popen[bytes], str]:
    """The bare FastAPI endpoint (benchmarks/bare_app.py) on the same uvicorn as xmr, ``workers`` processes."""
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "benchmarks.bare_app:create_bare_app"]
    cmd += ["--port", str(port), "--log-level", "warning", "--workers", str(workers)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc)
    return proc, url


def start_xmr(root: Path, workers: int, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    return start_server(root, XMR_WORKERS=str(workers), XMR_POLL_SECONDS="0", **env)


def cold_start(root: Path, workers: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) from starting ``xmr serve`` to the first 200 from /readyz. The CPU
    seconds (the server and its workers, until stopped right after) are what a busy machine inflates least."""
    port = free_port()
    xmr = Path(sys.executable).parent / "xmr"
    env = {**os.environ, "XMR_WORKERS": str(workers), "PYTHONPATH": str(ROOT)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    cmd = [str(xmr), "serve", "--root", str(root), "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=env)
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        wall = time.perf_counter() - t0
    finally:
        stop(proc)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def worker_memory(server_pid: int) -> list[tuple[float, float]]:
    """(RSS MiB, PSS MiB) of each process answering requests: uvicorn's worker processes, or the server
    itself when it runs one worker."""
    pids = worker_pids(server_pid) or [server_pid]
    out = []
    for pid in pids:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
        fields = dict(line.split(":", 1) for line in lines)
        out.append((int(fields["Rss"].split()[0]) / 1024, int(fields["Pss"].split()[0]) / 1024))
    return out
