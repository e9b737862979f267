"""Shared fixtures: one tiny real corpus (mp4 via PyAV), one briefly trained model, one published bundle.

Built once per session; everything downstream (export, indexing, serving, e2e) uses real files.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
TINY_VIDEOS, TINY_IMAGES = 120, 10


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from models.data.demo_corpus import build_demo_corpus

    out = tmp_path_factory.mktemp("corpus")
    build_demo_corpus(out, videos=TINY_VIDEOS, images=TINY_IMAGES, seed=3)
    return out


@pytest.fixture(scope="session")
def trained_run(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from models.train import TrainOptions, train

    out = tmp_path_factory.mktemp("run")
    train(TrainOptions(data=corpus, out=out, config="baseline_tiny", epochs=20, batch_size=16, lr=3e-3, seed=0))
    return out


@pytest.fixture(scope="session")
def videotext_runs(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """ViSERN and ProTA (models/videotext), briefly trained on ``corpus`` with one seed and budget."""
    from models.train import TrainOptions, train

    runs = {}
    for config in ("visern_tiny", "prota_tiny"):
        out = tmp_path_factory.mktemp(config)
        train(TrainOptions(data=corpus, out=out, config=config, epochs=10, batch_size=16, lr=3e-3, seed=0))
        runs[config] = out
    return runs


@pytest.fixture(scope="session")
def bundle_root(corpus: Path, trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from indexer.build import build

    root = tmp_path_factory.mktemp("bundles")
    build(corpus / "manifest.jsonl", "demo", root, trained_run, batch_size=16)
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def copy_with_new_version(src: Path, dst: Path) -> tuple[str, str]:
    """Copy bundle root ``src`` to ``dst`` and publish a second version of "demo" there (same files,
    model id "m2"). Returns (old, new); CURRENT names the new one."""
    import bundle

    shutil.copytree(src, dst)
    old = bundle.read_current(dst, "demo")
    assert old
    version, staging = bundle.staging_dir(dst, "demo")
    for f in (dst / "demo" / old).iterdir():
        if f.name != bundle.MANIFEST:
            (shutil.copytree if f.is_dir() else shutil.copy2)(f, staging / f.name)
    return old, bundle.publish(dst, "demo", version, staging, {"model_id": "m2", "counts": {}}).name


def start_server(root: Path, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    """``xmr serve`` (real uvicorn) on a free 127.0.0.1 port; returns once /readyz answers 200."""
    port = free_port()
    xmr = Path(sys.executable).parent / "xmr"
    log = tempfile.NamedTemporaryFile("w+", prefix="xmr-serve-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(  # output to a file: a pipe nobody reads would block a chatty server
        [str(xmr), "serve", "--root", str(root), "--port", str(port), "--log-level", "warning"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **env},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"xmr serve exited: {Path(log.name).read_text()}")
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("xmr serve did not become ready in 60 s")
