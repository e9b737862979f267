"""Building a pydantic-settings object from command-line options, with bad values as one-line errors."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from xmr.errors import SettingsError

S = TypeVar("S", bound=BaseSettings)


def build_settings(cls: type[S], **options: Any) -> S:
    """``cls`` from ``options`` (``None`` = not given) over its environment variables over its defaults.

    Raises SettingsError naming each bad value by its environment variable (``XMR_INDEX_KEEP``).
    """
    try:
        return cls(**{k: v for k, v in options.items() if v is not None})
    except ValidationError as exc:
        prefix = str(cls.model_config.get("env_prefix", ""))
        bad = [f"{prefix}{'.'.join(map(str, e['loc'])).upper()}={e.get('input')!r}: {e['msg']}" for e in exc.errors()]
        raise SettingsError(f"invalid {cls.__name__}: {'; '.join(bad)}") from exc
