"""Registries (timm-style): every encoder, loss and model registers itself under a name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from xmr.errors import ConfigError

T = TypeVar("T")


class Registry:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Any] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise KeyError(f"{self.kind} {name!r} registered twice")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> Any:
        """The object registered as ``name``; raises ConfigError (a config names it) listing the known ones."""
        if name not in self._items:
            raise ConfigError(f"unknown {self.kind} {name!r}; known: {sorted(self._items)}")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)


TEXT_ENCODERS = Registry("text encoder")
VISION_ENCODERS = Registry("vision encoder")
LOSSES = Registry("loss")
MODELS = Registry("model")
MOMENT_HEADS = Registry("moment head")
