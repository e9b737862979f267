"""Write a benchmark's section into docs/benchmarks.md (between <!-- NAME:start/end --> markers)."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        cpu = next(
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {mem:.1f} GiB, Python {platform.python_version()}, no GPU"


def write_section(name: str, body: str) -> None:
    stamp = f"_Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {machine()}._\n\n"
    block = f"<!-- {name}:start -->\n{stamp}{body.strip()}\n<!-- {name}:end -->"
    text = DOC.read_text() if DOC.is_file() else "# Benchmarks\n"
    pattern = re.compile(rf"<!-- {name}:start -->.*?<!-- {name}:end -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(text)


def percentiles(lat_s: list[float]) -> tuple[float, float]:
    import numpy as np

    ms = np.array(lat_s) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))
