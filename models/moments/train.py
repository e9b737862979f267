"""``xmr moments train``: fit a moment head on a retrieval run's clip features; checkpoints every epoch.

Writes ``<out>`` (default ``<run>/moments``): ``config.json`` (head config + ``span_clips``, the longest
training video in clips, and the run's ``clip_rate``), ``last.pt`` (atomic, every epoch),
``metrics.jsonl`` (loss per epoch) and ``val_metrics.json`` (official-format evaluation on val).
``sliding_window`` has no weights to fit: its "training" writes the config and checkpoint only.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from models.moments.batching import training_batch
from models.moments.data import MomentQuery, check_vids, read_qvhighlights, split_file, video_paths
from models.moments.features import clip_features
from models.moments.heads import CHECKPOINT, CONFIG, build_head, head_config, head_dir, save_head
from models.moments.metrics import eval_submission
from models.moments.predict import predict

log = logging.getLogger(__name__)


@dataclass
class MomentTrainOptions:
    data: Path
    run: Path
    head: str = "cdnet"
    out: Path | None = None  # default <run>/moments
    epochs: int | None = None  # None: the head config's
    batch_size: int | None = None
    lr: float | None = None
    seed: int = 0
    resume: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)  # e.g. {"use_qsd": False} for ablations
    validate: bool = True


def load_split(data: Path, split: str, known: set[str] | None = None) -> list[MomentQuery]:
    qs = read_qvhighlights(split_file(data, split), require_windows=True)
    if known is not None:
        check_vids(qs, known)
    return qs


def train_head(opts: MomentTrainOptions) -> dict[str, Any]:
    """Train (or resume) a head and return its validation metrics (``{}`` without a val split)."""
    from models.checkpoint import load_trained

    torch.manual_seed(opts.seed)
    model, tok, rcfg = load_trained(opts.run)
    known = set(video_paths(opts.data))
    train_q = load_split(opts.data, "train", known)
    val_q = load_split(opts.data, "val", known) if split_file(opts.data, "val").is_file() else []
    feats = clip_features(opts.run, opts.data, [q.vid for q in train_q + val_q], model)
    out = opts.out or head_dir(opts.run)
    out.mkdir(parents=True, exist_ok=True)
    cfg = _config(opts, out, rcfg["clip_rate"], max(len(feats[q.vid]) for q in train_q))
    head = build_head(cfg, model.text)
    params = [p for p in head.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=1e-4) if params else None
    start = _resume(out / CHECKPOINT, head, opt) if opts.resume else 0
    (out / CONFIG).write_text(json.dumps(cfg, indent=2))
    for epoch in range(start, cfg["epochs"] if opt else 0):
        loss = fit_epoch(head, opt, tok, train_q, feats, cfg, opts.seed * 1000 + epoch, epoch)
        save_head(out / CHECKPOINT, head, opt, epoch)
        with (out / "metrics.jsonl").open("a") as f:
            f.write(json.dumps({"epoch": epoch, "train_loss": loss}) + "\n")
    if opt is None or cfg["epochs"] == 0:
        save_head(out / CHECKPOINT, head, opt, -1)
    if not (opts.validate and val_q):
        return {}
    metrics = eval_submission(predict(head, tok, val_q, feats, cfg["clip_rate"]), [q.row for q in val_q])
    (out / "val_metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def _config(opts: MomentTrainOptions, out: Path, clip_rate: float, span_clips: int) -> dict[str, Any]:
    if opts.resume and (out / CONFIG).is_file():
        cfg: dict[str, Any] = json.loads((out / CONFIG).read_text())
        cfg["epochs"] = opts.epochs if opts.epochs is not None else cfg["epochs"]  # resume may extend training
        return cfg
    over = {"epochs": opts.epochs, "batch_size": opts.batch_size, "lr": opts.lr, **opts.overrides}
    cfg = head_config(opts.head, **over)
    cfg.update(clip_rate=clip_rate, span_clips=span_clips, seed=opts.seed, config=opts.head)  # config: e.g. cdnet_serve
    return cfg


def _resume(path: Path, head: torch.nn.Module, opt: torch.optim.Optimizer | None) -> int:
    if not path.is_file():
        return 0
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    head.load_state_dict(ckpt["head"])
    if opt is not None and "optimizer" in ckpt:
        opt.load_state_dict(ckpt["optimizer"])
    log.info("resumed %s at epoch %d", path, ckpt["epoch"] + 1)
    return int(ckpt["epoch"]) + 1


def length_batches(lengths: list[int], bs: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar lengths (sorted within random pools of 8 batches): less padding, less compute."""
    order = rng.permutation(len(lengths))
    pools = [order[i : i + 8 * bs] for i in range(0, len(order), 8 * bs)]
    batches = []
    for pool in pools:
        pool = pool[np.argsort([lengths[i] for i in pool], kind="stable")]
        batches += [pool[i : i + bs] for i in range(0, len(pool), bs)]
    return [batches[i] for i in rng.permutation(len(batches))]


def fit_epoch(
    head: Any,
    opt: torch.optim.Optimizer,
    tok: Any,
    qs: list[MomentQuery],
    feats: dict[str, np.ndarray],
    cfg: dict[str, Any],
    seed: int,
    epoch: int,
) -> float:
    """One pass over ``qs`` in shuffled batches; returns the mean loss."""
    head.train()
    rng = np.random.default_rng(seed)
    batches = length_batches([len(feats[q.vid]) for q in qs], int(cfg["batch_size"]), rng)
    losses = []
    bar = tqdm(batches, desc=f"{cfg['head']} epoch {epoch + 1}/{cfg['epochs']}", leave=False, disable=None)
    for idx in bar:
        batch = training_batch(tok, [qs[i] for i in idx], feats, cfg["clip_rate"], rng)
        terms = head.loss(batch)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)  # Moment-DETR clips at 0.1; ours: 1.0 (fewer steps)
        opt.step()
        losses.append(float(terms["loss"].detach()))
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    return float(np.mean(losses))
