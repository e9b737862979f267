"""Training options: the one set of defaults, shared by ``xmr train`` and ``models.train.train``.

Torch-free, so the CLI can show them in ``--help`` without importing torch. The defaults are the
ones docs/results.md's baseline was trained with (``make demo``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


@dataclass
class TrainOptions:
    data: Path  # corpus folder (msrvtt.json + manifest.jsonl)
    out: Path  # run folder: config.json, tokenizer.json, last.pt, metrics.jsonl
    config: str = "baseline"  # models/configs/<name>.json or a path
    epochs: int = 12
    batch_size: int = 64
    lr: float = 2e-3  # peak of the one-cycle schedule
    seed: int = 0
    resume: bool = False
    max_steps: int | None = None  # stop early (tests, smoke runs)
    max_minutes: float | None = None  # stop at the end of the epoch that passes this budget
    threads: int | None = None


def default(name: str) -> Any:
    """The default of option ``name`` (what the CLI shows and uses)."""
    return next(f.default for f in fields(TrainOptions) if f.name == name)
