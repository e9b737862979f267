"""Running a real ``xmr serve`` and publishing bundle versions: shared by the tests and the benchmarks.

A plain module (no pytest), so benchmarks import it without the test fixtures.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

THIS_XMR = Path(sys.executable).parent / "xmr"  # the console script of the running interpreter's install
ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("xmr", "bundle", "models", "indexer", "service")  # pyproject's packages.find include
STALE_VENV_S = 7 * 24 * 3600


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def publish_copy(src: Path, root: Path, collection: str, **fields: object) -> str:
    """Publish the files of version folder ``src`` as a new version of ``collection`` under ``root``
    (manifest fields from ``src``'s, overridden by ``fields``). Returns the new version; CURRENT names it."""
    import bundle

    version, staging = bundle.staging_dir(root, collection)
    for f in src.iterdir():
        if f.name != bundle.MANIFEST:
            (shutil.copytree if f.is_dir() else shutil.copy2)(f, staging / f.name)
    keep = {
        k: v
        for k, v in bundle.read_manifest(src).items()
        if k not in {"schema_version", "collection", "version", "created_at", "files"}
    }
    return bundle.publish(root, collection, version, staging, {**keep, **fields}).name


def copy_with_new_version(src: Path, dst: Path) -> tuple[str, str]:
    """Copy bundle root ``src`` to ``dst`` and publish a second version of "demo" there (same files,
    model id "m2"). Returns (old, new); CURRENT names the new one."""
    import bundle

    shutil.copytree(src, dst)
    old = bundle.read_current(dst, "demo")
    assert old
    return old, publish_copy(dst / "demo" / old, dst, "demo", model_id="m2", counts={})


def start_server(
    root: Path, xmr: Path = THIS_XMR, timeout_s: float = 60.0, poll_s: float = 0.2, **env: str
) -> tuple[subprocess.Popen[bytes], str]:
    """``xmr serve`` (real uvicorn, console script ``xmr``) on a free 127.0.0.1 port; returns once
    /readyz answers 200 (polled every ``poll_s`` seconds). ``env`` is added to this process's environment."""
    port = free_port()
    log = tempfile.NamedTemporaryFile("w+", prefix="xmr-serve-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(  # output to a file: a pipe nobody reads would block a chatty server
        [str(xmr), "serve", "--root", str(root), "--port", str(port), "--log-level", "warning"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "XMR_WORKERS": "1", **env},  # one process unless asked for more (2 shared cores)
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"xmr serve exited: {Path(log.name).read_text()}")
        time.sleep(poll_s)
    proc.kill()
    raise RuntimeError(f"xmr serve did not become ready in {timeout_s:.0f} s: {Path(log.name).read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a server started by ``start_server`` and reap it."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def pip(venv: Path, *args: str) -> str:
    """Run the venv's pip; fails with pip's output when pip does."""
    cmd = [str(venv / "bin" / "pip"), "--disable-pip-version-check", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"pip {' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out.stdout


def source_copy(dst: Path) -> Path:
    """The files `pip install` builds from, copied so that the build leaves nothing in the work tree."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dst / name)
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, dst / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def serving_venv() -> Path:
    """A venv holding `pip install <this repo>` with no extras (the serving install), current code.

    Cached per pyproject.toml under ~/.cache/xmr-test-venvs/<sha256> (``XMR_TEST_VENVS`` moves it):
    the dependencies are installed once (about 40 s from pip's caches on 2 cores); the project itself
    is reinstalled on every call (``--no-deps``, seconds) so the venv runs the code of this work tree.
    """
    key = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    cache = Path(os.environ.get("XMR_TEST_VENVS", Path.home() / ".cache" / "xmr-test-venvs"))
    venv = cache / key
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / f"{key}.lock").open("w") as lock, tempfile.TemporaryDirectory() as tmp:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs at once build it once
        src = source_copy(Path(tmp))
        if not (venv / ".complete").is_file():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            pip(venv, "install", "--quiet", str(src))  # the base dependencies: what `pip install xmr` gets
            pip(venv, "install", "--quiet", "setuptools>=68")  # the build backend, so reinstalls skip isolation
            (venv / ".complete").touch()
        # The code under test, built in place of the cached copy (no isolated build env: seconds, not ~20 s).
        pip(venv, "install", "--quiet", "--no-deps", "--force-reinstall", "--no-build-isolation", str(src))
        (venv / ".complete").touch()  # last used: venvs of old pyproject.tomls unused for a week are removed
    for old in cache.glob("*/.complete"):
        if time.time() - old.stat().st_mtime > STALE_VENV_S:
            shutil.rmtree(old.parent, ignore_errors=True)
            (cache / f"{old.parent.name}.lock").unlink(missing_ok=True)
    return venv


CHROMIUM = Path("/usr/bin/chromium")


def require_browser() -> None:
    """Skip a browser test where Chromium or Playwright is missing, except under CI (there: fail loudly)."""
    import importlib.util

    import pytest

    missing = [f"{CHROMIUM} (apt-get install chromium)"] if not CHROMIUM.is_file() else []
    if importlib.util.find_spec("playwright") is None:
        missing.append("the playwright package (pip install -e '.[dev]')")
    if missing and os.environ.get("CI") == "true":
        pytest.fail(f"browser test cannot run under CI: missing {', '.join(missing)}")
    if missing:
        pytest.skip(f"missing {', '.join(missing)}")


def worker_pids(server_pid: int) -> list[int]:
    """uvicorn's worker processes under ``xmr serve --workers N``: the server's children that are either
    spawned (``spawn_main`` in their command line) or forked from it (the same command line as the
    server), not multiprocessing's helper processes."""
    own = Path(f"/proc/{server_pid}/cmdline").read_bytes()
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    cmdlines = {int(p): Path(f"/proc/{p}/cmdline").read_bytes() for p in children}
    return [p for p, cmd in cmdlines.items() if b"spawn_main" in cmd or cmd == own]
