"""``xmr index build``: options over ``XMR_*`` environment variables over defaults (indexer/config.py)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from indexer.config import IndexSettings
from xmr.settings import build_settings

console = Console(stderr=True)
app = typer.Typer(help="Build and publish index bundles.", no_args_is_help=True)
log = logging.getLogger(__name__)


@app.command("build")
def build_cmd(
    manifest: Path = typer.Argument(..., help="manifest.jsonl / .csv, or a folder of media."),
    collection: str | None = typer.Option(None, help="Collection name. [env XMR_COLLECTION; demo]"),
    root: Path | None = typer.Option(None, help="Bundle root. [env XMR_ROOT; bundles]"),
    model: Path | None = typer.Option(None, help="Trained run folder (xmr train --out). [env XMR_MODEL; runs/demo]"),
    batch_size: int | None = typer.Option(None, min=1, help="[env XMR_INDEX_BATCH_SIZE; 32]"),
    keep: int | None = typer.Option(None, min=1, help="Published versions to keep. [env XMR_INDEX_KEEP; 3]"),
    shard_size: int | None = typer.Option(
        None, min=1, help="Items per checkpointed shard; a rerun skips finished shards. [env XMR_INDEX_SHARD_SIZE; 256]"
    ),
) -> None:
    """Decode, embed, index and publish; unreadable media are reported and skipped."""
    given: dict[str, Any] = {
        "collection": collection,
        "root": root,
        "model": model,
        "index_batch_size": batch_size,
        "index_keep": keep,
        "index_shard_size": shard_size,
    }
    s = build_settings(IndexSettings, **given)
    from indexer.build import build  # torch: imported once the options are known to be good

    report = build(
        manifest,
        s.collection,
        s.root,
        s.model,
        batch_size=s.index_batch_size,
        keep=s.index_keep,
        shard_size=s.index_shard_size,
    )
    for uri, reason in report.skipped:
        console.print(f"[yellow]skipped[/] {uri}: {reason}")
    console.print(
        f"[green]published[/] {s.collection}/{report.version}: {report.counts} "
        f"({len(report.skipped)} skipped) -> {report.path}"
    )
