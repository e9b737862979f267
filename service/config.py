"""Service settings: environment variables with the ``XMR_`` prefix (pydantic-settings), read in one place."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="XMR_")

    root: Path = Path("bundles")  # bundle root: <root>/<collection>/CURRENT
    host: str = "127.0.0.1"
    port: int = 8000
    default_collection: str | None = None  # when unset: the only collection, else the first by name
    max_body_bytes: int = 64 * 1024
    body_timeout_s: float = 10.0  # a request body not fully received this long after the request began: 408
    poll_seconds: float = 2.0  # how often CURRENT is re-read for hot reload; 0 disables polling
    onnx_threads: int = 1  # ONNX Runtime intra-op threads; 1 keeps ORT and FAISS from fighting for cores
    verify_checksums: bool = True
    # POST /v1/search's valid requests skip FastAPI's request machinery (service/fastpath.py); false: every
    # request goes through the route (the same answer, ~0.12 CPU ms slower; an A/B switch and a way out).
    # Off whenever `otel` is on, so that FastAPI's spans cover searches.
    fast_search: bool = True
    otel: bool = False  # FastAPI's native OpenTelemetry spans/metrics/logs (off: Prometheus /metrics is xmr's)
    media_root: Path | None = None  # where the indexed media folder is mounted here; default: the bundle's media_root
    # Encode + search measured (at load) under this many ms runs on the event loop, skipping the thread
    # hop, in a worker that has a core of its own; slower work runs in threads so the loop stays free.
    inline_max_ms: float = 1.0
    batch_max: int = 32  # most queries encoded in one ONNX call
    batch_min_encode_ms: float = 1.0  # encoders faster than this skip batching: the queue would cost more
    batch_wait_ms: float = 0.0  # extra wait for company; at 0 a batch is what queued while all slots were busy
    # Batches encoded concurrently per worker (one ONNX thread each); 0 = cores / workers, so all the
    # workers' batches together keep every core busy without oversubscribing it.
    batch_in_flight: int = 0
    workers: int = 0  # processes serving this port (`xmr serve --workers`); 0 = one per core
    role: Literal["all", "moments"] = "all"  # "moments": `xmr serve-moments`, only the moment endpoints
    moments_url: str | None = None  # search gets hits' moments from this `xmr serve-moments` (else in process)
    moments_timeout_s: float = 2.0  # per call to the moment service
    moments_retries: int = 1  # extra tries after a failed call (refused, timed out, 5xx), with backoff
    moments_breaker_failures: int = 3  # failed calls in a row that open the circuit ...
    moments_breaker_s: float = 10.0  # ... for this long: searches answer without moments, at once


@lru_cache
def get_settings() -> Settings:
    return Settings()
