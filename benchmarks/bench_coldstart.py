"""Cold start: seconds from launching `xmr serve` to the first /readyz 200, for the two installs.

    python benchmarks/bench_coldstart.py --root bundles --collection demo [--rounds 5]

"serving install": `pip install .` with no extras, in the venv tests/test_install.py uses (built here
if absent; tests/harness.py). "full install": the interpreter running this script (`make install`:
torch + the train and dev extras). Both serve the same bundle root with the same code; rounds
alternate which install goes first, and /readyz is polled every 20 ms. The ratio is what to read.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.report import bundle_manifest, describe_index, write_section  # noqa: E402
from tests import harness  # noqa: E402


def cold_start(root: Path, xmr: Path, **env: str) -> float:
    """Seconds from process launch to /readyz 200 (the bundle loaded, checksums verified)."""
    t0 = time.perf_counter()
    proc, _ = harness.start_server(root, xmr=xmr, poll_s=0.02, **env)
    took = time.perf_counter() - t0
    harness.stop(proc)
    return took


def has_torch(venv_bin: Path) -> bool:
    env = {**os.environ, "PYTHONPATH": ""}
    out = subprocess.run([str(venv_bin / "python"), "-c", "import torch"], capture_output=True, env=env)
    return out.returncode == 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, default=Path("bundles"))
    ap.add_argument("--collection", default="demo", help="only used to describe the bundle; every one is loaded")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    installs = {
        "serving install (`pip install .`)": (harness.serving_venv() / "bin", {"PYTHONPATH": ""}),
        "full install (`make install`: torch + train, dev extras)": (harness.THIS_XMR.parent, {}),
    }
    times: dict[str, list[float]] = {name: [] for name in installs}
    for r in range(args.rounds + 1):  # round 0 warms the page cache for both and is dropped
        order = list(installs) if r % 2 == 0 else list(installs)[::-1]
        for name in order:
            venv_bin, env = installs[name]
            took = cold_start(args.root, venv_bin / "xmr", OMP_NUM_THREADS="1", **env)
            if r:
                times[name].append(took)
    full = statistics.median(times[list(installs)[1]])
    lines = [
        "| install | torch installed | median s | min s | max s | median vs full install |",
        "|---|---|---|---|---|---|",
    ]
    for name, ts in times.items():
        med = statistics.median(ts)
        torch_there = "yes" if has_torch(installs[name][0]) else "no"
        lines.append(f"| {name} | {torch_there} | {med:.2f} | {min(ts):.2f} | {max(ts):.2f} | {med / full:.2f} |")
    body = (
        f"Bundle root `{args.root}`; collection `{args.collection}`: "
        f"{describe_index(bundle_manifest(args.root, args.collection))}. Time from launching `xmr serve` "
        f"to the first `/readyz` 200 (polled every 20 ms), {args.rounds} rounds after one warm-up, "
        f"alternating which install goes first, `OMP_NUM_THREADS=1`.\n\n"
        f"Command: `python benchmarks/bench_coldstart.py --root {args.root} --collection {args.collection} "
        f"--rounds {args.rounds}`\n\n" + "\n".join(lines)
    )
    write_section("coldstart", body)
    print(body)


if __name__ == "__main__":
    main()
