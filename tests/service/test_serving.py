"""The API against its own OpenAPI schema (schemathesis, all checks) and ``xmr serve --workers``,
both on a real uvicorn."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import bundle
from tests.harness import copy_with_new_version, start_server

pytestmark = pytest.mark.e2e
# A body over XMR_MAX_BODY_BYTES is refused (413, documented for every operation) before it is
# validated; schemathesis' list of statuses that reject invalid data lacks 413, so it is added.
CONFIG = """[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
"""


def test_schemathesis_all_checks_find_nothing(bundle_root: Path, tmp_path: Path) -> None:
    """Examples, coverage and fuzzing phases, every check (schema conformance, negative data rejected,
    positive data accepted, unsupported methods answered 405 with Allow, ...); bounded to ~30 s."""
    proc, url = start_server(bundle_root)
    st = Path(sys.executable).parent / "st"
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    cmd = [str(st), "--config-file", str(config), "run", f"{url}/openapi.json", "--checks", "all"]
    cmd += ["--max-examples", "15", "--seed", "0"]
    cmd += ["--workers", "1", "--generation-database", "none", "--no-color", "--report-dir", str(tmp_path)]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)  # its cache: not the repo
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    report = "\n".join(line[:300] for line in (run.stdout + run.stderr).splitlines())  # request bodies can be huge
    assert run.returncode == 0, report[-8000:]
    assert " passed" in run.stdout and "failure" not in run.stdout.split("SUMMARY")[-1]


def worker_pids(server_pid: int) -> list[int]:
    """uvicorn's worker processes: the server's spawned children."""
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    return [int(p) for p in children if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()]


def wait_until_mapped(pids: list[int], path: str, timeout_s: float = 60) -> None:
    """Until every process in ``pids`` has ``path`` memory-mapped (fails after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(path in Path(f"/proc/{pid}/maps").read_text() for pid in pids):
            return
        time.sleep(0.1)
    raise AssertionError(f"{path} not mapped by every worker {pids} within {timeout_s} s")


def test_workers_share_the_port_and_each_hot_reloads(bundle_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    old, new = copy_with_new_version(bundle_root, root)
    bundle.set_current(root, "demo", old)
    proc, url = start_server(root, XMR_WORKERS="2", XMR_POLL_SECONDS="0.2")
    try:
        pids = worker_pids(proc.pid)
        assert len(pids) == 2
        wait_until_mapped(pids, f"{old}/index.faiss")  # /readyz answered from one worker; the other may lag
        for pid in pids:  # each worker has loaded its own bundle, with the index codes memory-mapped
            assert "libtorch" not in Path(f"/proc/{pid}/maps").read_text()

        def versions(n: int) -> set[str]:  # fresh connections, so the kernel spreads them over the workers
            return {httpx.post(f"{url}/v1/search", json={"query": "a red 7"}).json()["version"] for _ in range(n)}

        assert versions(10) == {old}
        bundle.set_current(root, "demo", new)
        deadline = time.monotonic() + 30
        while versions(4) != {new} and time.monotonic() < deadline:
            time.sleep(0.2)
        assert versions(20) == {new}
        wait_until_mapped(pids, f"{new}/index.faiss")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
