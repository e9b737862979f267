"""Pack what benchmarks/gpu_check.py needs on a lent GPU machine into parts that the device tool can carry.

    python benchmarks/gpu_pack.py --bundle bundles/demo-minilm/<version> [--part-mib N]

The lent machines have Python 3.12, NumPy, tokenizers, CUDA 13's libraries (with PyTorch) and ONNX Runtime's
CPU build, and reach no network; a call carries at most 64 MiB. ONNX Runtime's GPU build is a 255 MB
wheel (1.31.1, built for CUDA 13) and the MiniLM text encoder 91 MB, so this script downloads the wheel for
the device's Python, puts it beside the bundle's ``text_encoder.onnx`` and ``tokenizer.json`` in one tar, and
splits that under ``.gpu/`` (ignored by git) into parts that fit a call beside the working tree. Files a call
leaves on a warm machine stay for the next call, so one call per part, the last one running the check,
moves it all. The plan is printed (and written to ``.gpu/PLAN.md``); follow it without pausing, or the
machine goes back (30 s idle) and the parts with it.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / ".gpu"
WHEEL = "onnxruntime-gpu"
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
CALL_LIMIT, MARGIN = 64 << 20, 2 << 20  # what one device call carries in all; room for the tree to grow
CHECK = (
    "cat .gpu/part-* > /tmp/gpu.tar && mkdir -p /tmp/gpu && tar xf /tmp/gpu.tar -C /tmp/gpu && "
    "python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site /tmp/gpu/*.whl && "
    "PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check.py --bundle /tmp/gpu/bundle "
    "--seconds 5 --out $OUT"
)


def tree_bytes() -> int:
    """Bytes of the working tree that travels with every call: tracked and untracked-not-ignored files."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    return sum((ROOT / f).stat().st_size for f in out.decode().split("\0") if f and (ROOT / f).is_file())


def download_wheel(dest: Path, version: str | None) -> Path:
    spec = f"{WHEEL}=={version}" if version else WHEEL
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12"]
    cmd += ["--implementation", "cp", *(f"--platform={p}" for p in PLATFORMS), "-d", str(dest), spec]
    subprocess.run(cmd, check=True)
    (wheel,) = sorted(dest.glob("onnxruntime_gpu-*.whl"))
    return wheel


def pack(bundle_dir: Path, wheel: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(wheel, arcname=wheel.name)
        for name in ("text_encoder.onnx", "tokenizer.json"):
            tar.add(bundle_dir / name, arcname=f"bundle/{name}")
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", type=Path, required=True, help="a bundle version folder (its text encoder is used)")
    ap.add_argument("--part-mib", type=int, default=None, help="default: what a call can carry beside the tree")
    ap.add_argument("--version", default=None, help="onnxruntime-gpu version (default: the newest on the index)")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("part-*"):
        old.unlink()
    wheel = download_wheel(OUT / "wheels", args.version)
    data = pack(args.bundle, wheel)
    size = (args.part_mib << 20) if args.part_mib else CALL_LIMIT - tree_bytes() - MARGIN
    parts = [data[i : i + size] for i in range(0, len(data), size)]
    names = []
    for i, part in enumerate(parts):
        path = OUT / f"part-{i:02d}"
        path.write_bytes(part)
        names.append(path.relative_to(ROOT).as_posix())
    steps = [f'{i + 1}. `run` with carry `["{n}"]`, command `ls -la .gpu`' for i, n in enumerate(names[:-1])]
    steps.append(f'{len(names)}. `run` with carry `["{names[-1]}"]`, timeout_s 300, command:\n\n   `{CHECK}`')
    plan = "\n".join(
        [
            f"{len(data) / 2**20:.0f} MiB in {len(names)} parts ({wheel.name}, {args.bundle}/text_encoder.onnx, "
            "tokenizer.json). One device call per part, back to back:",
            "",
            *steps,
            "",
            "Then `give_back`, and copy gpu_check.md into docs/benchmarks.md (section GPU).",
        ]
    )
    (OUT / "PLAN.md").write_text(plan + "\n")
    print(plan)


if __name__ == "__main__":
    main()
