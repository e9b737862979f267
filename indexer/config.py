"""Indexer settings: ``XMR_*`` environment variables (pydantic-settings), as the service reads its own.

``xmr index build`` options override them; unset, both fall back to the defaults here. ``XMR_ROOT``
is the same variable the service reads, so an indexer and a server in one environment agree on
where bundles live.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class IndexSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="XMR_", protected_namespaces=())

    collection: str = "demo"  # XMR_COLLECTION
    root: Path = Path("bundles")  # XMR_ROOT: bundle root, <root>/<collection>/CURRENT
    model: Path = Path("runs/demo")  # XMR_MODEL: trained run folder (xmr train --out)
    index_batch_size: int = Field(32, ge=1)  # XMR_INDEX_BATCH_SIZE: items embedded per forward pass
    index_keep: int = Field(3, ge=1)  # XMR_INDEX_KEEP: published versions kept
    index_shard_size: int = Field(256, ge=1)  # XMR_INDEX_SHARD_SIZE: items per checkpointed shard
