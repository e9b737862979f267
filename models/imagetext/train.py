"""Training loop for the image-text models on precomp data (``xmr train --config rvsepp_selhn ...``).

Follows the RVSE++ recipe (METHODS.md §4d) where the config's ``train`` block does not say
otherwise: AdamW, lr x0.1 after half the steps (epoch 15 of 30 in the paper), grad-norm clip 2.0,
batches of distinct images (``models/imagetext/batches.py``). A run directory holds
``config.json``, ``tokenizer.json``, ``last.pt`` (same format as the dual encoder's, so
``models.train.load_trained`` and the indexer read it) and ``metrics.jsonl``: one row per step
(loss terms) and one per evaluation (dev rSum, NDCG) - the curve docs/results.md plots.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer

from bundle import TOKENIZER
from models.factory import build_model, load_config, text_encoder_class
from models.imagetext.batches import Batcher
from models.imagetext.evaluate import evaluate_split
from models.imagetext.models import TASK
from models.imagetext.precomp import PrecompError, PrecompSplit, read_split
from models.imagetext.relevance import caption_embeddings
from models.tokenizer import UNK, encode
from models.train import save_checkpoint

log = logging.getLogger(__name__)
DEFAULTS: dict[str, Any] = {"epochs": 30, "batch_size": 128, "lr": 5e-4, "grad_clip": 2.0, "decay_at": 0.5}
GRADED = {"bcls", "listwise"}  # losses that need the pseudo-label matrix


@dataclass
class ImageTextOptions:
    data: Path
    out: Path
    config: str = "rvsepp_selhn"
    seed: int = 0
    overrides: dict[str, Any] = field(default_factory=dict)  # top-level config keys (tests, experiment)
    train: dict[str, Any] = field(default_factory=dict)  # epochs, batch_size, lr, ... over the config's
    max_steps: int | None = None
    eval_every: int = 0  # steps between dev evaluations; 0 = at the end of each epoch
    eval_split: str = "dev"


def is_image_text(config: str) -> bool:
    """Whether config ``config`` (name or path) is an image-text model (selects this loop in the CLI)."""
    return load_config(config).get("task") == TASK


def prepare(opts: ImageTextOptions, train: PrecompSplit) -> tuple[dict[str, Any], Tokenizer]:
    """The run's config (feature size and extractor taken from the data) and tokenizer, saved in ``out``."""
    cfg = load_config(opts.config, **opts.overrides)
    if cfg.get("task") != TASK:
        raise PrecompError(f"config {opts.config!r} is not an image-text model (task {cfg.get('task')!r})")
    cfg["image_dim"] = int(train.images.shape[2])
    spec_path = opts.data / "features.json"
    if spec_path.is_file():  # demo data: the model can then embed image files itself (indexing)
        cfg["features"] = json.loads(spec_path.read_text())
        cfg["frame_size"] = int(cfg["features"]["image_size"])
    cfg["train"] = {**DEFAULTS, **cfg.get("train", {}), **opts.train}
    tok = text_encoder_class(cfg).make_tokenizer(train.captions, **cfg["text"])
    opts.out.mkdir(parents=True, exist_ok=True)
    tok.save(str(opts.out / TOKENIZER))
    (opts.out / "config.json").write_text(json.dumps(cfg, indent=2))
    return cfg, tok


def make_batcher(cfg: dict[str, Any], tok: Tokenizer, train: PrecompSplit, data: Path) -> Batcher:
    ids, mask = encode(tok, train.captions)
    batcher = Batcher(train, ids, mask, tok.get_vocab_size(), tok.token_to_id(UNK) or 1, cfg["train"])
    if cfg["loss"] in GRADED:
        batcher.cap_emb = caption_embeddings(train.captions, cfg.get("pseudo_labels", "minilm"), data / ".cache")
    return batcher


def train_image_text(opts: ImageTextOptions) -> dict[str, Any]:
    """Train; return the last evaluation's metrics on ``opts.eval_split``."""
    torch.manual_seed(opts.seed)
    train, dev = read_split(opts.data, "train"), read_split(opts.data, opts.eval_split)
    cfg, tok = prepare(opts, train)
    hp = cfg["train"]
    batcher = make_batcher(cfg, tok, train, opts.data)
    model = build_model(cfg, tok.get_vocab_size())
    opt = torch.optim.AdamW(model.param_groups(hp["lr"]), lr=hp["lr"])
    per_epoch = max(len(train) // hp["batch_size"], 1)  # drop_last, as the papers' loaders
    total = min(hp["epochs"] * per_epoch, opts.max_steps or 10**12)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [max(int(hp["decay_at"] * total), 1)], gamma=0.1)
    rng = np.random.default_rng(opts.seed)
    log_path = opts.out / "metrics.jsonl"
    log_path.unlink(missing_ok=True)
    metrics: dict[str, Any] = {}
    step = 0
    with log_path.open("a") as f:
        while step < total:
            order = rng.permutation(len(train))
            for b in range(per_epoch):
                if step >= total:
                    break
                out = _step(model, opt, batcher.make(order[b * hp["batch_size"] : (b + 1) * hp["batch_size"]], rng), hp)
                sched.step()
                step += 1
                f.write(json.dumps({"step": step, **out}) + "\n")
                if (
                    (opts.eval_every and step % opts.eval_every == 0)
                    or step == total
                    or (not opts.eval_every and step % per_epoch == 0)
                ):
                    metrics = {"step": step, "epoch": step / per_epoch, **evaluate_split(model, tok, dev)}
                    f.write(json.dumps({"eval": opts.eval_split, **metrics}) + "\n")
                    f.flush()
                    log.info("step %d: loss %.4f %s rsum %.1f", step, out["loss"], opts.eval_split, metrics["rsum"])
            save_checkpoint(
                opts.out / "last.pt", model, opt, sched, int(step // per_epoch), step, cfg, tok.get_vocab_size()
            )
    return metrics


def _step(
    model: torch.nn.Module, opt: torch.optim.Optimizer, batch: dict[str, torch.Tensor], hp: dict[str, Any]
) -> dict[str, float]:
    model.train()
    terms = model(batch)
    opt.zero_grad(set_to_none=True)
    terms["loss"].backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), hp["grad_clip"])
    opt.step()
    return {k: float(v.detach()) for k, v in terms.items()}
