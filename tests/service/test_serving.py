"""The API against its own OpenAPI schema (schemathesis, all checks) and ``xmr serve --workers``,
both on a real uvicorn."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import bundle
from tests.harness import copy_with_new_version, start_server, worker_pids

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
        if sys.platform.startswith("linux"):  # forked from the supervisor, which imported the stack once
            own = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
            assert all(Path(f"/proc/{p}/cmdline").read_bytes() == own for p in pids)
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

        os.kill(pids[0], signal.SIGKILL)  # a worker dies: the supervisor starts another, which loads CURRENT
        deadline, replaced = time.monotonic() + 60, worker_pids(proc.pid)
        while time.monotonic() < deadline and (len(replaced) < 2 or pids[0] in replaced):  # one read a round
            time.sleep(0.2)
            replaced = worker_pids(proc.pid)
        assert len(replaced) == 2 and pids[0] not in replaced and pids[1] in replaced
        wait_until_mapped(replaced, f"{new}/index.faiss")
        assert versions(20) == {new}
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux only")
def test_workers_are_forked_only_from_a_single_threaded_supervisor() -> None:
    """``fork_workers_preimported`` switches uvicorn to fork after importing the web stack (not ONNX
    Runtime), and refuses when the process has another thread: a fork could leave a worker waiting on
    that thread's lock. ONNX Runtime's import starts a native thread in some environments (not under
    CI=true, measured): the switch then refuses too."""
    probe = (
        "import os, sys, threading, time\n"
        "from service.cli import fork_workers_preimported\n"
        "from uvicorn import _subprocess\n"
        "if sys.argv[1] == 'thread': threading.Thread(target=time.sleep, args=(5,), daemon=True).start()\n"
        "if sys.argv[1] == 'ort': import onnxruntime\n"
        "threads = len(os.listdir(f'/proc/{os.getpid()}/task'))\n"
        "print(fork_workers_preimported(), _subprocess.spawn.get_start_method(), 'onnxruntime' in sys.modules,"
        " threads)\n"
    )
    run = [sys.executable, "-c", probe]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # as `xmr serve` sets it: NumPy's BLAS then starts no thread
    answers = {
        k: subprocess.run([*run, k], capture_output=True, text=True, check=True, env=env).stdout.split()
        for k in ("plain", "thread", "ort")
    }
    assert answers["plain"] == ["True", "fork", "False", "1"]  # the web stack imported, ONNX Runtime left out
    assert answers["thread"] == ["False", "spawn", "False", "2"]
    ort_threads = int(answers["ort"][3])
    assert answers["ort"][:2] == (["True", "fork"] if ort_threads == 1 else ["False", "spawn"])
