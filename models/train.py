"""Training loop for the dual encoder: progress bar, per-epoch checkpoints, ``--resume``.

A run directory holds ``config.json``, ``tokenizer.json``, ``last.pt`` (model, optimizer, LR scheduler
and torch RNG state after the last finished epoch) and ``metrics.jsonl`` (one line per epoch: train
loss, val R@K). A run killed mid-epoch and resumed redoes that epoch from ``last.pt`` and ends with
the same weights as an uninterrupted run (per-epoch data order is seeded by the epoch number).
Loading a finished run for use (eval, export, indexing) is models/checkpoint.py.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer
from tqdm import tqdm

from bundle import TOKENIZER
from models.checkpoint import read_checkpoint
from models.data.datasets import FrameBank, Sample, cached_frames, load_corpus
from models.evaluate import evaluate_split
from models.factory import build_model, load_config, text_encoder_class
from models.options import TrainOptions
from models.tokenizer import encode, load_tokenizer
from xmr.errors import CheckpointError, DataError

log = logging.getLogger(__name__)


def pick_captions(samples: list[Sample], rng: np.random.Generator) -> list[str]:
    """Whole-item caption half the time, otherwise one of the partial (per-event) captions."""
    out = []
    for s in samples:
        if len(s.captions) == 1 or rng.random() < 0.5:
            out.append(s.captions[0])
        else:
            out.append(s.captions[int(rng.integers(1, len(s.captions)))])
    return out


def save_checkpoint(
    path: Path,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    sched: Any,
    epoch: int,
    step: int,
    cfg: dict[str, Any],
    vocab_size: int,
) -> None:
    """Everything a resumed run needs to continue exactly: weights, optimizer moments, the LR
    scheduler's position and the torch RNG (dropout, if a model has it)."""
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "config": cfg,
            "vocab_size": vocab_size,
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "epoch": epoch,
            "step": step,
        },
        tmp,
    )
    tmp.replace(path)  # a crash mid-save never leaves a truncated last.pt


def _setup(opts: TrainOptions) -> tuple[dict[str, Any], Tokenizer, list[Sample]]:
    samples = [s for s in load_corpus(opts.data) if s.captions]
    train = [s for s in samples if s.split == "train"]
    if not train:
        raise DataError(f"{opts.data}: the training split is empty (no train items with captions)")
    opts.out.mkdir(parents=True, exist_ok=True)
    if opts.resume and (opts.out / "config.json").is_file():
        cfg = json.loads((opts.out / "config.json").read_text())
        tok = load_tokenizer(opts.out / TOKENIZER)
    else:
        cfg = load_config(opts.config)
        tok = text_encoder_class(cfg).make_tokenizer((c for s in train for c in s.captions), **cfg["text"])
        tok.save(str(opts.out / TOKENIZER))
        (opts.out / "config.json").write_text(json.dumps(cfg, indent=2))
    return cfg, tok, samples


def train(opts: TrainOptions) -> dict[str, Any]:
    """Train and return the last epoch's validation metrics."""
    if opts.threads:
        torch.set_num_threads(opts.threads)
    torch.manual_seed(opts.seed)
    cfg, tok, samples = _setup(opts)
    train_s = [s for s in samples if s.split == "train"]
    bank = cached_frames(train_s, cfg["clip_rate"], cfg["frame_size"], opts.data / ".cache")
    model = build_model(cfg, tok.get_vocab_size())
    groups = model.param_groups(opts.lr)
    opt = torch.optim.AdamW(groups, lr=opts.lr, weight_decay=0.01)
    ckpt_path = opts.out / "last.pt"
    sched = _schedule(opt, groups, opts.epochs * int(np.ceil(len(train_s) / opts.batch_size)))
    start_epoch, step = _resume(ckpt_path, model, opt, sched, opts) if opts.resume else (0, 0)
    t0 = time.time()
    metrics: dict[str, Any] = {}
    for epoch in range(start_epoch, opts.epochs):
        loss, step = _epoch(model, opt, sched, tok, train_s, bank, opts, epoch, step)
        save_checkpoint(ckpt_path, model, opt, sched, epoch, step, cfg, tok.get_vocab_size())
        metrics = _validate(model, tok, cfg, samples, opts, {"epoch": epoch, "step": step, "train_loss": loss})
        out_of_steps = bool(opts.max_steps and step >= opts.max_steps)
        if out_of_steps or (opts.max_minutes and time.time() - t0 > 60 * opts.max_minutes):
            break
    return metrics


def _resume(
    path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, sched: Any, opts: TrainOptions
) -> tuple[int, int]:
    """Load ``path`` into model, optimizer, scheduler and the torch RNG; return (first epoch to run, steps done).

    Raises CheckpointError when the run's LR schedule cannot be continued: a checkpoint without
    scheduler state (written before it was saved) with epochs left, or a schedule planned for a
    different number of steps (other ``--epochs`` / ``--batch-size`` than the run was started with).
    """
    if not path.is_file():
        return 0, 0
    ckpt = read_checkpoint(path)  # CheckpointError names a corrupt last.pt
    start, step = ckpt["epoch"] + 1, ckpt["step"]
    saved = ckpt.get("scheduler")
    if start < opts.epochs and saved is None:
        raise CheckpointError(f"{path}: no LR scheduler state (an older checkpoint); cannot resume it exactly")
    if saved is not None and saved["total_steps"] != sched.total_steps:
        raise CheckpointError(
            f"{path}: the run's LR schedule spans {saved['total_steps']} steps, but --epochs {opts.epochs} "
            f"--batch-size {opts.batch_size} plan {sched.total_steps}; resume with the run's settings"
        )
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    if saved is not None:
        sched.load_state_dict(saved)
    if "torch_rng" in ckpt:
        torch.set_rng_state(ckpt["torch_rng"])
    log.info("resumed from %s at epoch %d (step %d)", path, start, step)
    return start, step


def _schedule(opt: torch.optim.Optimizer, groups: list[dict[str, Any]], total: int) -> Any:
    """One-cycle schedule over ``total`` steps; on resume its saved state is loaded (``_resume``)."""
    return torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[g["lr"] for g in groups], total_steps=max(total, 1), pct_start=0.1
    )


def _validate(
    model: Any, tok: Tokenizer, cfg: dict[str, Any], samples: list[Sample], opts: TrainOptions, row: dict[str, Any]
) -> dict[str, Any]:
    """Validation metrics appended to ``metrics.jsonl`` together with ``row`` (epoch, step, loss)."""
    metrics = {**row, **evaluate_split(model.eval(), tok, cfg, samples, "val", opts.data / ".cache")}
    with (opts.out / "metrics.jsonl").open("a") as f:
        f.write(json.dumps(metrics) + "\n")
    log.info("epoch %d: loss %.3f val %s", row["epoch"], row["train_loss"], metrics.get("video", {}).get("t2v"))
    return metrics


def _epoch(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    sched: Any,
    tok: Tokenizer,
    train_s: list[Sample],
    bank: FrameBank,
    opts: TrainOptions,
    epoch: int,
    step: int,
) -> tuple[float, int]:
    model.train()
    rng = np.random.default_rng(opts.seed * 1000 + epoch)
    order = rng.permutation(len(train_s))
    batches = [order[i : i + opts.batch_size] for i in range(0, len(order), opts.batch_size)]
    batches = [b for b in batches if len(b) > 1]
    losses = []
    bar = tqdm(batches, desc=f"epoch {epoch + 1}/{opts.epochs}", unit="batch", leave=False, disable=None)
    for idx in bar:
        frames, fmask = bank.batch(idx)
        ids, tmask = encode(tok, pick_captions([train_s[i] for i in idx], rng))
        out = model(
            {
                "input_ids": torch.from_numpy(ids),
                "attention_mask": torch.from_numpy(tmask),
                "frames": torch.from_numpy(frames),
                "frame_mask": torch.from_numpy(fmask),
            }
        )
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        step += 1
        losses.append(out["loss"].item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if opts.max_steps and step >= opts.max_steps:
            break
    return float(np.mean(losses)) if losses else float("nan"), step
