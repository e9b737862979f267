"""Indexing a 2-hour video: streamed throughput (clips/s) vs the encoder's raw forward on the same
clips, and the build's peak RSS next to a 10-minute video's.

python benchmarks/bench_long_video.py [--run runs/demo] [--hours 2]

Videos are rendered here (dark frames with demo-corpus events, ``--size`` px at ``--fps``). Each
build runs in its own interpreter (``xmr``'s real ``indexer.build.build``), which reports its own
peak RSS and the time spent in decode + encode (``embed_corpus``). The raw forward runs the same
windows of the same decoded clips in this process, from memory. Without ``--run`` an untrained model
of ``--config`` is used (throughput does not depend on the weights).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.report import write_section  # noqa: E402

CHILD = """
import json, resource, sys, time
from pathlib import Path
import indexer.build as b
spent = []
real = b.embed_corpus
def timed(*a, **k):
    t0 = time.perf_counter(); out = real(*a, **k); spent.append(time.perf_counter() - t0); return out
b.embed_corpus = timed
t0 = time.perf_counter()
b.build(Path(sys.argv[1]), "bench", Path(sys.argv[2]), Path(sys.argv[3]))
print(json.dumps({"embed_s": spent[0], "build_s": time.perf_counter() - t0,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def build_child(folder: Path, root: Path, run: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder), str(root), str(run)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def untrained_run(config: str, out: Path) -> Path:
    """A run folder holding an untrained ``config`` model (one epoch on 16 demo videos)."""
    from models.data.demo_corpus import build_demo_corpus
    from models.train import TrainOptions, train

    build_demo_corpus(out / "corpus", videos=16, images=0, seed=0)
    train(TrainOptions(data=out / "corpus", out=out / "run", config=config, epochs=1, batch_size=8))
    return out / "run"


def raw_forward(run: Path, video: Path) -> tuple[int, float, float]:
    """(clips, decode-only seconds, raw forward seconds over the same windows, from memory)."""
    from indexer.embed import Embedder
    from models.data.media import ClipFrames
    from models.long_video import encode_stream

    emb = Embedder(run)
    t0 = time.perf_counter()
    frames = np.concatenate(list(ClipFrames(video, emb.clip_rate, emb.frame_size, chunk=emb.span)))
    t_decode = time.perf_counter() - t0
    chunks = (frames[i : i + emb.span] for i in range(0, len(frames), emb.span))
    t0 = time.perf_counter()
    encode_stream(emb.model, chunks, emb.span, emb.device)
    return len(frames), t_decode, time.perf_counter() - t0


def main() -> None:
    from tests.indexer.long_media import actor, write_long_video

    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, default=None, help="trained run; default: an untrained --config model")
    ap.add_argument("--config", default="baseline")
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--size", type=int, default=64, help="rendered frame side, px")
    ap.add_argument("--fps", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="xmr-bench-long-") as tmp:
        base = Path(tmp)
        run = args.run or untrained_run(args.config, base / "model")
        events = [actor("a red 7 moves left", 300), actor("a blue 3 moves right", args.hours * 3600 - 100)]
        for name, seconds in (("ten", 600), ("long", args.hours * 3600)):
            (base / name).mkdir()
            write_long_video(
                base / name / "video.mp4",
                seconds,
                events[:1] if seconds == 600 else events,
                fps=args.fps,
                size=args.size,
            )
        ten = build_child(base / "ten", base / "root-ten", run)
        long = build_child(base / "long", base / "root-long", run)
        clips, t_decode, t_forward = raw_forward(run, base / "long" / "video.mp4")
        cfg = json.loads((run / "config.json").read_text())
    raw = clips / t_forward
    rows = [
        ("decode only (PyAV, streamed, frame picker)", clips / t_decode),
        ("raw encoder forward over the same windows (frames in memory)", raw),
        ("indexer: streamed decode + window encode (`embed_corpus`)", clips / long["embed_s"]),
    ]
    lines = ["| stage | clips/s | vs raw forward |", "|---|---|---|"]
    lines += [f"| {name} | {v:.0f} | {v / raw:.2f} |" for name, v in rows]
    model = (
        f"model config `{cfg.get('name', args.config)}` ({'trained run' if args.run else 'untrained'}, "
        f"frame {cfg['frame_size']} px, embed dim {cfg['embed_dim']}, windows of {cfg['vision']['max_frames']} "
        "clips overlapping by half, so every clip is encoded twice)"
    )
    body = (
        f"One {args.hours:g}-hour video ({clips:,} clips at 2 clips/s; rendered {args.size}x{args.size} H.264 at "
        f"{args.fps} fps), {model}, torch {torch.__version__}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}.\n\n"
        f"Command: `python benchmarks/bench_long_video.py --hours {args.hours:g}`\n\n" + "\n".join(lines) + "\n\n"
        "| build (`indexer.build.build`, own process) | wall s | peak RSS MB |\n|---|---|---|\n"
        f"| 10-minute video (1,200 clips) | {ten['build_s']:.1f} | {ten['peak_mb']:.0f} |\n"
        f"| {args.hours:g}-hour video ({clips:,} clips) | {long['build_s']:.1f} | {long['peak_mb']:.0f} |\n\n"
        "Peak RSS includes torch, the model and the ONNX export; the 2-hour build holds its clip features "
        "(a few copies of clips x dim float32) on top, never its frames.\n"
    )
    write_section("long-video", body)
    print(body)  # noqa: T201


if __name__ == "__main__":
    main()
