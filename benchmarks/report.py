"""Write a benchmark's section into docs/benchmarks.md (between <!-- NAME:start/end --> markers)."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import time
from pathlib import Path
from typing import Any

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
    load = os.getloadavg()[0]  # the machine is shared: a busy one slows every row of a table alike
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem:.1f} GiB, Python {platform.python_version()}, {accelerator()}, "
        f"load average {load:.1f} at start, {spin_seconds():.2f} s for 10M Python additions"
    )


def spin_seconds(n: int = 10_000_000) -> float:
    """A CPU speed probe: the same host has run this in 0.28 s and, slowed by its neighbours with
    nothing of ours running, in 0.67 s. Tables from runs with different probes do not compare."""
    t0, x = time.perf_counter(), 0
    for i in range(n):
        x += i
    return time.perf_counter() - t0


def accelerator() -> str:
    """What this run could use besides the CPU, asked of torch (or, in the serving install, ONNX Runtime)."""
    try:
        import torch
    except ImportError:
        import onnxruntime as ort

        cuda = "CUDAExecutionProvider" in ort.get_available_providers()
        return "ONNX Runtime CUDA provider present" if cuda else "no GPU (ONNX Runtime: CPU provider only)"
    if torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name(0)} (torch.cuda)"
    return "no GPU (torch.cuda.is_available() is False)"


def bundle_manifest(root: Path, collection: str) -> dict[str, Any]:
    """The live version's manifest.json of ``collection`` under bundle root ``root`` (labels come from it)."""
    import bundle

    version = bundle.read_current(root, collection)
    if version is None:
        raise SystemExit(f"{root}/{collection}: no published bundle (CURRENT missing)")
    return bundle.read_manifest(root / collection / version)


def describe_index(manifest: dict[str, Any]) -> str:
    """'1200 items (video 1000, image 200), FAISS `Flat`, inner_product, 256-d' from a bundle manifest."""
    counts = manifest.get("counts", {})
    parts = ", ".join(f"{k} {v}" for k, v in counts.items())
    return (
        f"{sum(counts.values())} items ({parts}), FAISS `{manifest.get('faiss_factory')}` index, "
        f"{manifest.get('metric')}, {manifest.get('dim')}-d, model `{manifest.get('model_id')}`"
    )


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
