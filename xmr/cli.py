"""The ``xmr`` console script: subcommands live next to the package they drive."""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console

from service.cli import serve, serve_moments
from xmr.errors import XmrError


def _root() -> None:
    """xmr: text-to-video and image retrieval."""


def build_app(command: str | None = None) -> typer.Typer:
    """The CLI. For ``serve`` only the service is imported: the serving process never loads
    ``models`` or ``indexer.build`` (and so never torch), per DESIGN.md."""
    app = typer.Typer(
        help="xmr: text-to-video and image retrieval.", no_args_is_help=True, pretty_exceptions_enable=False
    )
    app.callback()(_root)  # keeps `xmr serve` a subcommand even when it is the only one registered
    app.command("serve")(serve)
    app.command("serve-moments")(serve_moments)
    if command not in ("serve", "serve-moments"):
        from indexer.cli import app as index_app
        from models.cli import register as register_models

        register_models(app)
        app.add_typer(index_app, name="index")
    return app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        build_app(sys.argv[1] if len(sys.argv) > 1 else None)()
    except (XmrError, FileNotFoundError) as exc:  # known faults: one line, no traceback
        Console(stderr=True).print(f"[red]error:[/] {exc}")
        sys.exit(2)
