"""The ``xmr`` console script: subcommands live next to the package they drive."""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console

from indexer.cli import app as index_app
from models.cli import register as register_models
from service.cli import serve
from xmr.errors import XmrError

app = typer.Typer(help="xmr: text-to-video and image retrieval.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
register_models(app)
app.add_typer(index_app, name="index")
app.command("serve")(serve)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app()
    except (XmrError, FileNotFoundError) as exc:  # known faults: one line, no traceback
        Console(stderr=True).print(f"[red]error:[/] {exc}")
        sys.exit(2)
