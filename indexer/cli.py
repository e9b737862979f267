"""``xmr index build``."""

from __future__ import annotations

import logging
from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True)
app = typer.Typer(help="Build and publish index bundles.", no_args_is_help=True)
log = logging.getLogger(__name__)


@app.command("build")
def build_cmd(
    manifest: Path = typer.Argument(..., help="manifest.jsonl / .csv, or a folder of media."),
    collection: str = typer.Option("demo", help="Collection name.", envvar="XMR_COLLECTION"),
    root: Path = typer.Option(Path("bundles"), help="Bundle root.", envvar="XMR_ROOT"),
    model: Path = typer.Option(Path("runs/demo"), help="Trained run folder (xmr train --out).", envvar="XMR_MODEL"),
    batch_size: int = typer.Option(32, min=1, envvar="XMR_INDEX_BATCH_SIZE"),
    keep: int = typer.Option(3, min=1, help="Published versions to keep.", envvar="XMR_INDEX_KEEP"),
    shard_size: int = typer.Option(
        256, min=1, help="Items per checkpointed shard; a rerun skips finished shards.", envvar="XMR_INDEX_SHARD_SIZE"
    ),
) -> None:
    """Decode, embed, index and publish; unreadable media are reported and skipped."""
    from indexer.build import build

    report = build(manifest, collection, root, model, batch_size=batch_size, keep=keep, shard_size=shard_size)
    for uri, reason in report.skipped:
        console.print(f"[yellow]skipped[/] {uri}: {reason}")
    console.print(
        f"[green]published[/] {collection}/{report.version}: {report.counts} "
        f"({len(report.skipped)} skipped) -> {report.path}"
    )
