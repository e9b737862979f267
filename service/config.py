"""Service settings: environment variables with the ``XMR_`` prefix (pydantic-settings), read in one place."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="XMR_")

    root: Path = Path("bundles")  # bundle root: <root>/<collection>/CURRENT
    host: str = "127.0.0.1"
    port: int = 8000
    default_collection: str | None = None  # when unset: the only collection, else the first by name
    max_body_bytes: int = 64 * 1024
    poll_seconds: float = 2.0  # how often CURRENT is re-read for hot reload; 0 disables polling
    onnx_threads: int = 1  # ONNX Runtime intra-op threads; 1 keeps ORT and FAISS from fighting for cores
    verify_checksums: bool = True


@lru_cache
def get_settings() -> Settings:
    return Settings()
