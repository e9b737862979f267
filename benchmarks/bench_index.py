"""Indexing throughput (decode + embed, videos/s) vs the encoder's raw forward on the same frames.

python benchmarks/bench_index.py --data data/demo --run runs/demo [--videos 300]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.report import write_section  # noqa: E402
from indexer.build import embed_corpus  # noqa: E402
from indexer.embed import Embedder  # noqa: E402
from indexer.manifest import read_manifest  # noqa: E402


def source_format(uri: str) -> str:
    """'128x128 h264 at 10 fps' for the first video: the stamp describes the media that were measured."""
    import av

    with av.open(uri) as container:
        s = container.streams.video[0]
        return (
            f"{s.codec_context.width}x{s.codec_context.height} {s.codec_context.name} at {float(s.average_rate):g} fps"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("data/demo"))
    ap.add_argument("--run", type=Path, default=Path("runs/demo"))
    ap.add_argument("--videos", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    items = [i for i in read_manifest(args.data / "manifest.jsonl") if i.modality == "video"][: args.videos]
    emb = Embedder(args.run)
    embed_corpus(emb, items[:32], args.batch_size)  # warm-up

    t0 = time.perf_counter()
    decoded = [emb.read(it)[0] for it in items]
    t_decode = time.perf_counter() - t0

    t0 = time.perf_counter()
    for i in range(0, len(decoded), args.batch_size):
        emb.forward(decoded[i : i + args.batch_size])
    t_forward = time.perf_counter() - t0

    t0 = time.perf_counter()
    embed_corpus(emb, items, args.batch_size)
    t_index = time.perf_counter() - t0

    n = len(items)
    clips = sum(len(d) for d in decoded)
    rate, size = emb.cfg["clip_rate"], emb.cfg["frame_size"]  # what the trained run decodes to
    rows = [
        (f"decode only (PyAV, {rate:g} clips/s, {size} px)", n / t_decode),
        ("raw encoder forward on decoded frames", n / t_forward),
        ("indexer embed path (decode + forward, batched)", n / t_index),
    ]
    lines = ["| stage | videos/s | vs raw forward |", "|---|---|---|"]
    lines += [f"| {name} | {v:.1f} | {v / (n / t_forward):.2f} |" for name, v in rows]
    body = (
        f"{n} videos ({clips} clips; {source_format(items[0].path)}, decoded to {size}x{size} at {rate:g} "
        f"clips/s), batch {args.batch_size}, torch {torch.__version__} with {torch.get_num_threads()} threads "
        f"on {emb.device}.\n\n"
        f"Command: `python benchmarks/bench_index.py --data {args.data} --run {args.run} --videos {args.videos}`\n\n"
        + "\n".join(lines)
    )
    write_section("index", body)
    print(body)


if __name__ == "__main__":
    main()
