"""The app factory of ``xmr serve --workers N``: each worker process starts loading its bundles, then imports
the web stack while they load (see ``BundleStore.start_refresh``). Importing this module is cheap: it
imports neither FastAPI nor the bundle readers until the factory runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI


def app_from_env() -> FastAPI:
    """uvicorn factory: ``uvicorn --factory service.worker:app_from_env`` (settings from ``XMR_*``)."""
    from service.config import get_settings
    from service.store import BundleStore  # NumPy, ONNX Runtime, FAISS: what loading needs

    settings = get_settings()
    store = BundleStore.from_settings(settings).start_refresh()
    from service.main import create_app  # FastAPI, pydantic's models, the routes: imported while loading

    return create_app(settings, store)
