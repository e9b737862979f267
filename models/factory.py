"""One factory for every model: JSON config in models/configs + overrides -> nn.Module."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from torch import nn

import models.dual_encoder  # noqa: F401  (registers)
import models.encoders.minilm  # noqa: F401
import models.encoders.text  # noqa: F401
import models.encoders.vision  # noqa: F401
import models.imagetext.models  # noqa: F401
import models.losses  # noqa: F401
import models.videotext.prota  # noqa: F401
import models.videotext.visern  # noqa: F401
from models.registry import MODELS, TEXT_ENCODERS
from xmr.errors import ConfigError

CONFIG_DIR = Path(__file__).parent / "configs"


def list_configs() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


def load_config(name: str, **overrides: Any) -> dict[str, Any]:
    """Config ``name`` (a file stem in models/configs or a path) with top-level ``overrides`` applied.

    Raises ConfigError when the file is missing or is not a JSON object with an ``arch``.
    """
    path = Path(name) if name.endswith(".json") else CONFIG_DIR / f"{name}.json"
    if not path.is_file():
        raise ConfigError(f"model config {name!r} not found; known: {list_configs()} or a path to a .json file")
    try:
        cfg: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"model config {path}: not valid JSON ({exc.msg}, line {exc.lineno})") from exc
    if not isinstance(cfg, dict) or "arch" not in cfg:
        raise ConfigError(f"model config {path}: expected a JSON object with an 'arch' (one of {MODELS.names()})")
    cfg = copy.deepcopy(cfg)
    cfg.update(overrides)
    cfg.setdefault("name", path.stem)
    return cfg


def build_model(cfg: dict[str, Any], vocab_size: int) -> nn.Module:
    return MODELS.get(cfg["arch"])(cfg, vocab_size)


def text_encoder_class(cfg: dict[str, Any]) -> Any:
    """The registered text encoder a config names; it also knows how to make its tokenizer."""
    return TEXT_ENCODERS.get(cfg.get("text_encoder", "transformer"))
