"""``xmr serve``: uvicorn on 127.0.0.1 serving the bundles under ``--root``."""

from __future__ import annotations

import os
from pathlib import Path

import typer


def serve(
    root: Path = typer.Option(Path("bundles"), help="Bundle root (<root>/<collection>/CURRENT).", envvar="XMR_ROOT"),
    host: str = typer.Option("127.0.0.1", help="Interface to bind.", envvar="XMR_HOST"),
    port: int = typer.Option(8000, help="TCP port.", envvar="XMR_PORT"),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Serve search over HTTP (FastAPI + uvicorn). Never imports torch."""
    # ONNX Runtime's and FAISS's thread pools fight over small machines; one OpenMP thread is faster
    # (docs/benchmarks.md). Must be set before faiss/onnxruntime are imported.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ["XMR_ROOT"], os.environ["XMR_HOST"], os.environ["XMR_PORT"] = str(root), host, str(port)
    if not root.is_dir():
        raise typer.BadParameter(
            f"{root} is not a directory; build a bundle with `xmr index build`", param_hint="--root"
        )
    import uvicorn

    uvicorn.run("service.main:app_from_env", factory=True, host=host, port=port, log_level=log_level)


def serve_moments(
    root: Path = typer.Option(Path("bundles"), help="Bundle root (<root>/<collection>/CURRENT).", envvar="XMR_ROOT"),
    host: str = typer.Option("127.0.0.1", help="Interface to bind.", envvar="XMR_HOST"),
    port: int = typer.Option(8001, help="TCP port.", envvar="XMR_PORT"),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Serve only the moment endpoints (/v1/moments, /v1/moments/batch), for a search service whose
    XMR_MOMENTS_URL points here. Never imports torch."""
    os.environ["XMR_ROLE"] = "moments"
    serve(root, host, port, log_level)
