"""``xmr serve``: uvicorn serving the bundles under ``--root``.

Settings are built once, here, as a ``Settings`` object (pydantic-settings: ``XMR_*`` environment
variables and defaults, with the command-line options on top) and handed to ``create_app``. With
one worker uvicorn runs that app object. Several worker processes cannot share an object: uvicorn
then needs an import string, so ``run`` writes the same settings into the environment
(``settings_env``) and each worker rebuilds them with ``service.worker:app_from_env``. On Linux the
workers are forked from the supervisor after it imported the web stack (``fork_workers_preimported``),
so they skip most of the imports. Either way each process's bundles start loading in a background
thread before FastAPI is built (``BundleStore.start_refresh``).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from pathlib import Path

import typer

from service.config import Settings
from xmr.errors import BundleError
from xmr.settings import build_settings


def settings_env(settings: Settings) -> dict[str, str]:
    """``settings`` as ``XMR_*`` environment variables that ``Settings()`` reads back unchanged."""
    prefix = Settings.model_config.get("env_prefix", "")
    return {f"{prefix}{name}".upper(): str(value) for name, value in settings.model_dump().items() if value is not None}


def run(settings: Settings, log_level: str = "info", workers: int = 1) -> None:
    """Serve ``settings`` with uvicorn until interrupted."""
    import uvicorn

    # ws="none": the app has no websocket routes, and importing a websocket library costs cold start.
    if workers == 1:
        from service.store import BundleStore  # NumPy, ONNX Runtime, FAISS: what loading needs

        store = BundleStore.from_settings(settings).start_refresh()  # loads while the web stack imports
        from service.main import create_app

        app = create_app(settings, store)
        uvicorn.run(app, host=settings.host, port=settings.port, log_level=log_level, ws="none")
        return
    os.environ.update(settings_env(settings))  # the worker processes inherit it
    fork_workers_preimported()
    uvicorn.run(
        "service.worker:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        workers=workers,
        ws="none",
    )


# What the supervisor imports before it forks the workers: the web stack, most of a worker's start-up,
# none of which starts a thread. ONNX Runtime's import starts a native thread on this machine (not under
# CI=true), and forking a process with threads can leave a child waiting forever on a lock that thread
# held, so it, FAISS and everything that loads a bundle are imported by each worker.
PREFORK_IMPORTS = (
    "numpy",
    "pydantic",
    "pydantic_settings",
    "fastapi",
    "fastapi.routing",
    "fastapi.responses",
    "starlette.concurrency",
    "prometheus_client",
    "anyio._backends._asyncio",
    "uvloop",
    "httptools",
    "uvicorn.protocols.http.httptools_impl",
    "service.schemas",
    "service.errors",
)


def fork_workers_preimported() -> bool:
    """On Linux, have uvicorn fork its workers from this supervisor after it imported ``PREFORK_IMPORTS``.

    uvicorn starts workers with multiprocessing's "spawn": each re-imports FastAPI, pydantic, NumPy and
    the rest in a fresh interpreter, most of a cold start. Forked from a supervisor that imported them
    once, the workers start with those modules in place (and share their pages). The supervisor loads
    no bundle; each worker loads its own (``service.worker``), as with spawn. Returns whether workers
    will be forked: not off Linux (fork is unsafe with some macOS system libraries), not where this
    process has a thread besides its own after the imports (checked, not assumed), and not with a
    uvicorn that keeps its start method elsewhere than the private variable this sets.
    """
    if not sys.platform.startswith("linux"):
        return False
    import multiprocessing

    from uvicorn import _subprocess

    if not isinstance(getattr(_subprocess, "spawn", None), multiprocessing.context.SpawnContext):
        return False
    for name in PREFORK_IMPORTS:
        with contextlib.suppress(ImportError):  # uvloop and httptools are optional speed-ups of uvicorn
            importlib.import_module(name)
    if len(os.listdir(f"/proc/{os.getpid()}/task")) != 1:  # a thread, started by an import or by a caller
        return False
    _subprocess.spawn = multiprocessing.get_context("fork")  # type: ignore[assignment]
    return True


def default_workers() -> int:
    """One worker per CPU core this process may run on (its affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def serve(
    root: Path | None = typer.Option(None, help="Bundle root (<root>/<collection>/CURRENT). [env XMR_ROOT; bundles]"),
    host: str | None = typer.Option(None, help="Interface to bind. [env XMR_HOST; 127.0.0.1]"),
    port: int | None = typer.Option(None, help="TCP port. [env XMR_PORT; 8000]"),
    workers: int | None = typer.Option(
        None,
        min=0,
        help="Processes sharing the port, each loading the bundles and hot-reloading on its own. "
        "[env XMR_WORKERS; 0 = one per core]",
    ),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Serve search over HTTP (FastAPI + uvicorn). Never imports torch."""
    # ONNX Runtime's and FAISS's thread pools fight over small machines; one OpenMP thread is faster
    # (docs/benchmarks.md). Must be set before faiss/onnxruntime are imported (run() imports them).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    settings = build_settings(Settings, root=root, host=host, port=port, workers=workers)  # options > env > defaults
    if not settings.root.is_dir():
        raise BundleError(f"bundle root {settings.root} is not a directory; build a bundle with `xmr index build`")
    settings = settings.model_copy(update={"workers": settings.workers or default_workers()})
    run(settings, log_level, settings.workers)


def serve_moments(
    root: Path | None = typer.Option(None, help="Bundle root (<root>/<collection>/CURRENT). [env XMR_ROOT; bundles]"),
    host: str | None = typer.Option(None, help="Interface to bind. [env XMR_HOST; 127.0.0.1]"),
    port: int | None = typer.Option(None, help="TCP port. [env XMR_PORT; 8000]"),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Serve only the moment endpoints (/v1/moments, /v1/moments/batch) for a search service whose
    XMR_MOMENTS_URL points here. Never imports torch."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    settings = build_settings(Settings, root=root, host=host, port=port, role="moments")
    if not settings.root.is_dir():
        raise BundleError(f"bundle root {settings.root} is not a directory; build a bundle with `xmr index build`")
    run(settings, log_level)
