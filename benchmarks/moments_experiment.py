"""Moment heads on the long-video demo test split: cdnet vs span_regression vs sliding_window vs trivial.

    nice -n 10 python benchmarks/moments_experiment.py [--data data/demo] [--run runs/demo] [--seeds 0 1 2]

Needs a trained retrieval run (``make demo`` or ``xmr train``); writes the long moment set if missing
(``<data>/long``), caches the run's clip features once, trains each head per seed through the same
code as ``xmr moments train``, evaluates with the official-equivalent metrics, and writes the table
into docs/results.md between ``<!-- moments:start/end -->`` markers (mean ± standard deviation over
seeds; the trivial predictors' random window is also drawn per seed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "results.md"
COLUMNS = {
    "R1@0.5": "MR-full-R1@0.5",
    "R1@0.7": "MR-full-R1@0.7",
    "mAP@0.5": "MR-full-mAP@0.5",
    "mAP@0.75": "MR-full-mAP@0.75",
    "mAP": "MR-full-mAP",
    "HL-mAP (≥VG)": "HL-min-VeryGood-mAP",
    "HIT@1 (≥VG)": "HL-min-VeryGood-Hit1",
}
HEADS = {  # label -> (registry name, config overrides)
    "cdnet": ("cdnet", {}),
    "cdnet w/o QSD": ("cdnet", {"use_qsd": False}),
    "cdnet w/o CDD": ("cdnet", {"cdd_points": 0}),
    "cdnet, hidden 32": ("cdnet", {"hidden": 32}),
    # the serving size (models/moments/configs/cdnet_serve.json): 1 encoder + 1 decoder layer, 2 attention
    # heads, hidden 32; its window graph costs about half the default's (docs/benchmarks.md, moments)
    "cdnet_serve": ("cdnet_serve", {}),
    "span_regression": ("span_regression", {}),
    "sliding_window": ("sliding_window", {}),
}
# Moment-DETR's published QVHighlights test numbers (METHODS.md §1(e), as quoted in later papers' tables [S]).
THEIRS = {
    "R1@0.5": 52.89,
    "R1@0.7": 33.02,
    "mAP@0.5": 54.82,
    "mAP@0.75": 29.40,
    "mAP": 30.73,
    "HL-mAP (≥VG)": 35.69,
    "HIT@1 (≥VG)": 55.60,
}


def run_head(data: Path, run: Path, label: str, seed: int, out: Path) -> dict:
    from bundle import TOKENIZER
    from models.moments.data import read_qvhighlights, split_file
    from models.moments.features import clip_features
    from models.moments.heads import head_config, load_head
    from models.moments.metrics import eval_submission
    from models.moments.predict import predict
    from models.moments.train import MomentTrainOptions, train_head
    from models.tokenizer import load_tokenizer

    name, overrides = HEADS[label]
    head_out = out / f"{label.replace(' ', '_').replace('/', '')}-{seed}"
    # resume: a rerun continues each head run to its config's epochs instead of starting over
    epochs = head_config(name)["epochs"]
    opts = MomentTrainOptions(data, run, name, head_out, epochs, seed=seed, resume=True, overrides=overrides)
    opts.validate = False
    train_head(opts)
    head = load_head(run, head_out)  # loaded back from its folder, as `xmr moments predict` / export do
    test = read_qvhighlights(split_file(data, "test"), require_windows=True)
    feats = clip_features(run, data, [q.vid for q in test])
    rows = predict(head, load_tokenizer(run / TOKENIZER), test, feats, head.cfg["clip_rate"])
    return eval_submission(rows, [q.row for q in test])["brief"]


def clip_features_once(data: Path, run: Path) -> None:
    from models.moments.data import read_qvhighlights, split_file
    from models.moments.features import clip_features

    vids = [q.vid for s in ("train", "val", "test") for q in read_qvhighlights(split_file(data, s))]
    clip_features(run, data, vids)


def trivial_rows(data: Path, seed: int) -> dict[str, dict]:
    from models.moments.data import read_qvhighlights, split_file
    from models.moments.metrics import eval_submission
    from models.moments.predict import trivial

    test = read_qvhighlights(split_file(data, "test"), require_windows=True)
    gt = [q.row for q in test]
    return {
        f"trivial: {k}": eval_submission(trivial(test, k, seed), gt)["brief"] for k in ("whole", "centre", "random")
    }


def table(results: dict[str, list[dict]]) -> str:
    head = "| predictor | " + " | ".join(COLUMNS) + " |\n|---|" + "---|" * len(COLUMNS) + "\n"
    lines = []
    for label, runs in results.items():
        cells = []
        for key in COLUMNS.values():
            vals = np.array([r[key] for r in runs], float)
            cells.append(f"{vals.mean():.2f} ± {vals.std():.2f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    theirs = (
        "| *Moment-DETR on QVHighlights test (theirs, published)* | "
        + " | ".join(f"*{THEIRS[c]:.2f}*" for c in COLUMNS)
        + " |"
    )
    return head + "\n".join(lines) + "\n" + theirs + "\n"


def write_section(body: str) -> None:
    block = f"<!-- moments:start -->\n{body.strip()}\n<!-- moments:end -->"
    text = DOC.read_text()
    pattern = re.compile(r"<!-- moments:start -->.*?<!-- moments:end -->", re.S)
    DOC.write_text(
        pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "demo")
    ap.add_argument("--run", type=Path, default=ROOT / "runs" / "demo")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--videos", type=int, default=200, help="Long videos to write if <data>/long is missing.")
    ap.add_argument("--heads", nargs="+", default=["cdnet", "span_regression", "sliding_window"], choices=list(HEADS))
    ap.add_argument("--jobs", type=int, default=3, help="Parallel training processes (one thread each).")
    args = ap.parse_args()
    long_dir = args.data / "long"
    if not (long_dir / "moments_test.jsonl").is_file():
        from models.data.demo_moments import build_long_moments

        build_long_moments(long_dir, args.videos, seed=0)
    out = args.run / "moments-experiment"
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    clip_features_once(long_dir, args.run)  # before the workers start, so they only read the cache
    tasks = [(label, seed) for label in args.heads for seed in args.seeds]
    with ProcessPoolExecutor(args.jobs) as pool:
        briefs = list(pool.map(run_head, *zip(*[(long_dir, args.run, lb, sd, out) for lb, sd in tasks], strict=True)))
    results: dict[str, list[dict]] = {h: [] for h in args.heads}
    for (label, _), brief in zip(tasks, briefs, strict=True):
        results[label].append(brief)
    for seed in args.seeds:
        for k, v in trivial_rows(long_dir, seed).items():
            results.setdefault(k, []).append(v)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    stamp = (
        f"_Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {len(args.seeds)} seeds, {time.time() - t0:.0f} s._\n\n"
    )
    write_section(stamp + table(results))


if __name__ == "__main__":
    main()
