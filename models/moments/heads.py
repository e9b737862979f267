"""One factory for moment heads: JSON config (models/moments/configs) + the retrieval run's text tower.

A head run lives in ``<retrieval run>/moments/``: ``config.json`` (the head's config, with ``head``,
``span_clips`` and ``clip_rate``) and ``last.pt`` (head weights, optimizer, epoch). The head's weights
include its frozen copy of the text tower, so a head run is self-contained once built.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

import models.moments.baselines  # noqa: F401  (registers sliding_window, span_regression)
import models.moments.cdnet  # noqa: F401  (registers cdnet)
from models.moments.common import MomentHead
from models.registry import MOMENT_HEADS
from xmr.errors import XmrError

CONFIG_DIR = Path(__file__).parent / "configs"
HEAD_DIR = "moments"
CONFIG = "config.json"
CHECKPOINT = "last.pt"


class NoMomentHead(XmrError):
    """A retrieval run has no trained moment head (``<run>/moments/``)."""


def head_config(name: str, **overrides: Any) -> dict[str, Any]:
    """The config ``name`` (a registered head's default, or another file under configs/ whose "head"
    names a registered head, e.g. ``cdnet_serve``) with ``overrides`` (None values ignored)."""
    path = CONFIG_DIR / f"{name}.json"
    if not path.is_file():
        MOMENT_HEADS.get(name)  # unknown names fail here, listing the known ones
    cfg: dict[str, Any] = json.loads(path.read_text())
    MOMENT_HEADS.get(cfg["head"])
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    return cfg


def build_head(cfg: dict[str, Any], text_tower: torch.nn.Module) -> MomentHead:
    head: MomentHead = MOMENT_HEADS.get(cfg["head"])(cfg, text_tower)
    return head


def head_dir(run_dir: Path) -> Path:
    return run_dir / HEAD_DIR


def save_head(path: Path, head: MomentHead, opt: torch.optim.Optimizer | None, epoch: int) -> None:
    """Atomic checkpoint: written beside, then renamed over ``path``."""
    tmp = path.with_suffix(".tmp")
    state = {"config": head.cfg, "head": head.state_dict(), "epoch": epoch}
    if opt is not None:
        state["optimizer"] = opt.state_dict()
    torch.save(state, tmp)
    tmp.replace(path)


def load_head(run_dir: Path, folder: Path | None = None) -> MomentHead:
    """The head of retrieval run ``run_dir`` (in ``folder``, default ``<run>/moments``), eval mode;
    ``NoMomentHead`` names the folder when it holds no head."""
    from models.checkpoint import load_trained

    hd = folder or head_dir(run_dir)
    if not (hd / CHECKPOINT).is_file() or not (hd / CONFIG).is_file():
        raise NoMomentHead(f"{hd}: no moment head; train one with `xmr moments train --run {run_dir}`")
    model, _, _ = load_trained(run_dir)
    ckpt = torch.load(hd / CHECKPOINT, map_location="cpu", weights_only=False)
    head = build_head(ckpt["config"], model.text)
    head.load_state_dict(ckpt["head"])
    return head.eval()
