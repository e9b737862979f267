"""``xmr serve``: uvicorn on 127.0.0.1 serving the bundles under ``--root``."""

from __future__ import annotations

import os
from pathlib import Path

import typer


def default_workers() -> int:
    """One worker per CPU core this process may run on (its affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def serve(
    root: Path = typer.Option(Path("bundles"), help="Bundle root (<root>/<collection>/CURRENT).", envvar="XMR_ROOT"),
    host: str = typer.Option("127.0.0.1", help="Interface to bind.", envvar="XMR_HOST"),
    port: int = typer.Option(8000, help="TCP port.", envvar="XMR_PORT"),
    workers: int = typer.Option(
        0,
        min=0,
        help="Processes sharing the port, each loading the bundles and hot-reloading on its own; 0 = one per core.",
        envvar="XMR_WORKERS",
    ),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Serve search over HTTP (FastAPI + uvicorn). Never imports torch."""
    # ONNX Runtime's and FAISS's thread pools fight over small machines; one OpenMP thread is faster
    # (docs/benchmarks.md). Must be set before faiss/onnxruntime are imported.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    workers = workers or default_workers()
    # Worker processes are started by uvicorn from an import string, so settings travel as XMR_ variables.
    os.environ["XMR_ROOT"], os.environ["XMR_HOST"], os.environ["XMR_PORT"] = str(root), host, str(port)
    os.environ["XMR_WORKERS"] = str(workers)
    if not root.is_dir():
        raise typer.BadParameter(
            f"{root} is not a directory; build a bundle with `xmr index build`", param_hint="--root"
        )
    import uvicorn

    app = "service.main:app_from_env"
    # ws="none": the app has no websocket routes, and importing a websocket library costs cold start.
    uvicorn.run(app, factory=True, host=host, port=port, log_level=log_level, workers=workers, ws="none")
