"""The query encoder on ONNX Runtime's CUDA provider, for a lent GPU machine (issue 15): one short script.

    python benchmarks/gpu_check.py --bundle DIR [--seconds 5] [--out DIR]

``DIR`` holds a bundle's ``text_encoder.onnx`` and ``tokenizer.json`` (a bundle version folder, or what
benchmarks/gpu_pack.py unpacks there). The script:

1. names ONNX Runtime's build, its providers and the ones the service's ``QueryEncoder`` got (it asks for
   CUDA, then the CPU: ``service.encoder.providers``);
2. checks the encoder against its oracles: the same graph on a CPU-only session, and batched encoding
   against one query at a time (the micro-batcher relies on padding invariance);
3. measures batching on ÷ off through the service's own ``MicroBatcher``: 32 concurrent clients, each
   query either joining a batch (up to 32, one batch in flight) or encoded alone in a thread of its own (the
   path of an encoder that skips batching); the goal is ≥ 3x on a GPU. The encoder alone on batches of 32 and
   of 1 is the ceiling and the floor.

Without CUDA it says so and measures the CPU provider, so it runs (and is tested) on any machine. Writes
``gpu_check.json`` and ``gpu_check.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

from service.batcher import MicroBatcher  # noqa: E402
from service.encoder import QueryEncoder  # noqa: E402

CLIENTS = 32
QUERIES = [
    "a red 7 moves left, then a blue 3 appears",
    "a green 1 moves up",
    "x",
    "a yellow 2 moves right, then a red 8 appears, then a blue 5 moves down and leaves",
    "two digits cross paths in the middle of the frame",
    "a blue 4",
    "the number nine drifts slowly to the bottom left corner while a white 6 stays still",
    "something moves",
] * 4


def gpu_name() -> str:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        return out.stdout.strip() or "none (nvidia-smi printed nothing)"
    except (OSError, subprocess.SubprocessError):
        return "none (no nvidia-smi)"


def oracles(encoder: QueryEncoder, bundle_dir: Path) -> dict[str, float]:
    """Max |difference| of the encoder's embeddings against a CPU-only session of the same graph, and of a
    batch against one query at a time on the encoder's own provider."""
    on_cpu = QueryEncoder(bundle_dir, on=["CPUExecutionProvider"])  # the same tokenisation and feeds
    batched = encoder.encode(QUERIES)
    alone = np.concatenate([encoder.encode([q]) for q in QUERIES])
    return {
        "provider_vs_cpu": float(np.abs(batched - on_cpu.encode(QUERIES)).max()),
        "batched_vs_one_at_a_time": float(np.abs(batched - alone).max()),
    }


def encoder_rate(encoder: QueryEncoder, batch: int, seconds: float) -> float:
    """Queries/s of the encoder alone on batches of ``batch``, one call at a time."""
    texts = (QUERIES * (batch // len(QUERIES) + 1))[:batch]
    encoder.encode(texts)
    n, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        encoder.encode(texts)
        n += batch
    return n / seconds


async def service_rate(encoder: QueryEncoder, batching: bool, seconds: float) -> tuple[float, float]:
    """(queries/s, mean queries per encoder call) of ``CLIENTS`` concurrent clients, each asking its next query
    as soon as the last is answered, through the MicroBatcher or each in a thread of its own."""
    sizes: list[int] = []
    batcher = MicroBatcher(32, 0.0, sizes.append, in_flight=1)
    batcher.start()
    n, stop_at = 0, 0.0

    async def client(i: int) -> None:
        nonlocal n
        while time.perf_counter() < stop_at:
            text = QUERIES[(i + n) % len(QUERIES)]
            if batching:
                await batcher.encode(encoder, text)
            else:
                await asyncio.to_thread(encoder.encode, [text])
            n += 1

    try:
        stop_at = time.perf_counter() + min(1.0, seconds)  # warm-up
        await asyncio.gather(*(client(i) for i in range(CLIENTS)))
        n, sizes[:] = 0, []
        stop_at = time.perf_counter() + seconds
        await asyncio.gather(*(client(i) for i in range(CLIENTS)))
    finally:
        await batcher.stop()
    return n / seconds, (float(np.mean(sizes)) if sizes else 1.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", type=Path, required=True, help="folder with text_encoder.onnx and tokenizer.json")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")))
    args = ap.parse_args()
    encoder = QueryEncoder(args.bundle)
    got = encoder.session.get_providers()
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; GPU: {gpu_name()}",
        "onnxruntime": f"{ort.__version__} ({ort.get_device()})",
        "available_providers": ort.get_available_providers(),
        "encoder_providers": got,
        "cuda": "CUDAExecutionProvider" in got,
        "oracles_max_abs_diff": oracles(encoder, args.bundle),
        "encoder_alone_qps": {str(b): encoder_rate(encoder, b, args.seconds) for b in (1, 32)},
    }
    on, on_batch = asyncio.run(service_rate(encoder, True, args.seconds))
    off, off_batch = asyncio.run(service_rate(encoder, False, args.seconds))
    result["service_qps"] = {"batching_on": on, "batching_off": off, "mean_batch_on": on_batch}
    result["batching_on_over_off"] = on / off
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n")
    alone = result["encoder_alone_qps"]
    diffs = result["oracles_max_abs_diff"]
    md = "\n".join(
        [
            f"_Run {result['date']} on {result['machine']}; ONNX Runtime {result['onnxruntime']}; the encoder ran on "
            f"{', '.join(got)}{'' if result['cuda'] else ' (no CUDA provider: a CPU measurement)'}._",
            "",
            f"Command: `python benchmarks/gpu_check.py --bundle {args.bundle.name} --seconds {args.seconds:g}` "
            f"({CLIENTS} concurrent clients in one process; batching on: the service's MicroBatcher, batches of up "
            "to 32, one in flight; off: each query its own encoder call in a thread).",
            "",
            "| measure | value |",
            "|---|---|",
            f"| embeddings on this provider vs a CPU session, max abs diff | {diffs['provider_vs_cpu']:.2e} |",
            f"| batched vs one at a time, max abs diff | {diffs['batched_vs_one_at_a_time']:.2e} |",
            f"| encoder alone, batches of 1 (queries/s) | {alone['1']:.0f} |",
            f"| encoder alone, batches of 32 (queries/s) | {alone['32']:.0f} |",
            f"| {CLIENTS} clients, batching off (queries/s) | {off:.0f} |",
            f"| {CLIENTS} clients, batching on (queries/s; mean batch {on_batch:.1f}) | {on:.0f} |",
            f"| **batching on ÷ off** (goal on a GPU: ≥ 3) | **{on / off:.2f}** |",
        ]
    )
    (args.out / "gpu_check.md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
