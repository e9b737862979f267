"""Loading a trained run: what the indexer, ``xmr eval`` and ``xmr export`` need from ``xmr train``.

A run folder holds ``config.json``, ``tokenizer.json`` and ``last.pt`` (written by models/train.py).
Kept apart from the training loop so that using a model does not depend on how it was trained.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer

from bundle import TOKENIZER
from models.factory import build_model
from models.tokenizer import load_tokenizer
from xmr.errors import CheckpointError

CHECKPOINT = "last.pt"
KEYS = ("config", "vocab_size", "model")


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The dict saved at ``path`` (CPU tensors); raises CheckpointError when it is missing or unreadable."""
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; train one with `xmr train`")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except (EOFError, RuntimeError, OSError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from exc
    missing = [k for k in KEYS if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: not an xmr checkpoint (missing {missing})")
    return dict(ckpt)


def load_trained(run_dir: Path) -> tuple[torch.nn.Module, Tokenizer, dict[str, Any]]:
    """Model (eval mode, CPU), tokenizer and config from a run folder or a ``.pt`` file inside one."""
    run_dir = run_dir.parent if run_dir.suffix == ".pt" else run_dir
    ckpt = read_checkpoint(run_dir / CHECKPOINT)
    model = build_model(ckpt["config"], ckpt["vocab_size"])
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:  # shapes or names differ: the weights belong to another config
        raise CheckpointError(f"{run_dir / CHECKPOINT}: weights do not fit its config ({exc})") from exc
    if not (run_dir / TOKENIZER).is_file():
        raise CheckpointError(f"{run_dir}: {TOKENIZER} missing beside {CHECKPOINT}; the run folder is incomplete")
    return model.eval(), load_tokenizer(run_dir / TOKENIZER), ckpt["config"]
