"""The image-text loss comparison of docs/results.md, in one command::

    nice -n 10 python -m models.imagetext.experiment --data data/imagetext --out runs/imagetext-exp

Trains RVSE++ (tiny: 64-d embeddings, 32-d word vectors) once per loss and seed on the same
demo data with the same budget (steps, batch, lr), evaluates every ``eval_every`` steps on dev
(the rSum curve) and at the end on test (R@K, rSum, NDCG@10), and writes the table between the
``imagetext`` markers of docs/results.md and the curve to docs/imagetext_rsum.png.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.checkpoint import load_trained
from models.imagetext.evaluate import evaluate_split
from models.imagetext.precomp import read_split
from models.imagetext.train import ImageTextOptions, prepare, train_image_text

log = logging.getLogger(__name__)
LOSSES = ("triplet_hn", "selhn", "triplet_sum", "unified", "bcls", "listwise")
TINY = {"embed_dim": 64, "text": {"word_dim": 32, "max_tokens": 32}}  # ours: CPU budget
BUDGET = {"batch_size": 64, "lr": 2e-3, "epochs": 1000, "decay_at": 1.0}  # ours: steps cap the run, no decay
DOCS = Path(__file__).resolve().parents[2] / "docs"
MARK = "imagetext"


def run_one(data: Path, out: Path, loss: str, seed: int, steps: int, eval_every: int) -> dict[str, Any]:
    """Train one (loss, seed); return its dev curve, branch fractions and test metrics."""
    opts = ImageTextOptions(data, out, f"rvsepp_{loss}", seed, TINY, BUDGET, steps, eval_every, "dev")
    train_image_text(opts)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    model, tok, _ = load_trained(out)
    return {
        "curve": [(r["step"], r["rsum"]) for r in rows if "eval" in r],
        "frac_all": [r["frac_all"] for r in rows if "frac_all" in r and "eval" not in r],
        "loss": [r["loss"] for r in rows if "eval" not in r],
        "test": evaluate_split(model, tok, read_split(data, "test")),
    }


def untrained(data: Path, out: Path) -> dict[str, Any]:
    """Test metrics of a randomly initialised RVSE++ (seed 0): the floor every loss must clear."""
    from models.factory import build_model

    torch.manual_seed(0)
    cfg, tok = prepare(ImageTextOptions(data, out, "rvsepp_selhn", 0, TINY, BUDGET), read_split(data, "train"))
    return evaluate_split(build_model(cfg, tok.get_vocab_size()).eval(), tok, read_split(data, "test"))


def mean_pm(values: list[float]) -> str:
    return f"{np.mean(values):.1f} ± {np.std(values, ddof=1) if len(values) > 1 else 0.0:.1f}"


def table(results: dict[str, list[dict[str, Any]]], floor: dict[str, Any], early: tuple[int, ...]) -> str:
    head = (
        "| loss | "
        + " | ".join(f"dev rSum @{s}" for s in early)
        + " | test rSum | i2t R@1 | t2i R@1 | NDCG@10 i2t | NDCG@10 t2i |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for loss, runs in results.items():
        curves = [dict(r["curve"]) for r in runs]
        cols = [mean_pm([c[s] for c in curves]) for s in early]
        test = [r["test"] for r in runs]
        cols += [
            mean_pm([t["rsum"] for t in test]),
            mean_pm([t["i2t"]["R@1"] for t in test]),
            mean_pm([t["t2i"]["R@1"] for t in test]),
            mean_pm([100 * t["ndcg_i2t"] for t in test]),
            mean_pm([100 * t["ndcg_t2i"] for t in test]),
        ]
        lines.append(f"| `{loss}` | " + " | ".join(cols) + " |")
    f = floor
    lines.append(
        "| untrained (seed 0) | " + " | ".join("–" for _ in early) + f" | {f['rsum']:.1f} | {f['i2t']['R@1']:.1f} | "
        f"{f['t2i']['R@1']:.1f} | {100 * f['ndcg_i2t']:.1f} | {100 * f['ndcg_t2i']:.1f} |"
    )
    return "\n".join(lines)


def plot(results: dict[str, list[dict[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for loss, runs in results.items():
        steps = [s for s, _ in runs[0]["curve"]]
        vals = np.array([[v for _, v in r["curve"]] for r in runs])  # (seeds, evals)
        ax.plot(steps, vals.mean(0), label=loss, lw=2 if loss in ("selhn", "triplet_hn") else 1.2)
        ax.fill_between(steps, vals.min(0), vals.max(0), alpha=0.15)
    ax.set_xlabel("training step (batch 64)")
    ax.set_ylabel("dev rSum (max 600)")
    ax.set_title("RVSE++ on the image-text demo set: mean and min-max over 3 seeds")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


def write_section(body: str, doc: Path = DOCS / "results.md") -> None:
    """Replace the text between the ``imagetext`` markers of ``doc`` (appending them if absent)."""
    start, end = f"<!-- {MARK}:start -->", f"<!-- {MARK}:end -->"
    text = doc.read_text() if doc.is_file() else ""
    block = f"{start}\n{body}\n{end}"
    if start in text:
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("data/imagetext"))
    ap.add_argument("--out", type=Path, default=Path("runs/imagetext-exp"))
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--eval-every", type=int, default=30)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--losses", nargs="+", default=list(LOSSES))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    t0, c0 = time.time(), time.process_time()
    results = {
        loss: [run_one(args.data, args.out / loss / str(s), loss, s, args.steps, args.eval_every) for s in args.seeds]
        for loss in args.losses
    }
    floor = untrained(args.data, args.out / "untrained")
    (args.out / "summary.json").write_text(json.dumps({"results": results, "untrained": floor}))
    plot(results, DOCS / "imagetext_rsum.png")
    early = tuple(s for s in (30, 60, 120) if s < args.steps) + (args.steps,)
    wall, cpu = (time.time() - t0) / 60, (time.process_time() - c0) / 60
    meta = (
        f"{dt.date.today().isoformat()}, {len(args.seeds)} seeds {args.seeds}, {args.steps} steps per run, "
        f"{cpu:.1f} CPU-minutes ({wall:.1f} min wall on a shared 2-core machine)."
    )
    write_section(
        f"_Written by `python -m models.imagetext.experiment` on {meta}_\n\n{table(results, floor, early)}\n\n"
        f"![dev rSum over training steps](imagetext_rsum.png)"
    )
    log.info("done: %s", meta)


if __name__ == "__main__":
    main()
