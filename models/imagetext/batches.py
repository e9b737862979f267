"""Training batches for image-text models: B distinct images, one of each image's captions, with the
RVSE++ augmentations (METHODS.md §4c) and, for graded losses, the pseudo-label matrix.

Ours: a batch holds distinct images (the VSE code samples captions, so an image can meet itself
as a "negative"); an epoch visits every image once with a random one of its 5 captions; the
``<mask>`` token of the caption augmentation is ``[UNK]`` (the word-level vocabulary has no mask).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from models.imagetext.precomp import CAPS_PER_IMAGE, PrecompSplit
from models.imagetext.relevance import batch_relevance


def drop_regions(regions: np.ndarray, p: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Drop each region with probability ``p`` (at least one kept); kept regions move to the front.

    regions (B, K, D) -> (regions (B, K', D) zero-padded, lengths (B,)).
    """
    b, k = regions.shape[:2]
    keep = rng.random((b, k)) >= p
    keep[np.arange(b), rng.integers(k, size=b)] |= ~keep.any(1)  # an image never loses every region
    order = np.argsort(~keep, axis=1, kind="stable")  # kept first, in their original order
    lengths = keep.sum(1)
    out = np.take_along_axis(regions, order[:, :, None], axis=1)[:, : lengths.max()].copy()
    out[np.arange(out.shape[1])[None, :] >= lengths[:, None]] = 0.0
    return out, lengths


def alter_tokens(ids: np.ndarray, mask: np.ndarray, p: float, vocab: int, unk: int, rng: np.random.Generator) -> Any:
    """Each real token is altered with probability ``p``: 50% -> unk, 10% -> a random word, 40% deleted."""
    rows = []
    for row, m in zip(ids, mask, strict=True):
        toks = []
        for t in row[m > 0]:
            u = rng.random()
            if u >= p:
                toks.append(t)
            elif u < p * 0.5:
                toks.append(unk)
            elif u < p * 0.6:
                toks.append(int(rng.integers(2, vocab)))
        rows.append(toks or [unk])
    width = max(len(r) for r in rows)
    out_ids = np.zeros((len(rows), width), np.int64)
    out_mask = np.zeros((len(rows), width), np.int64)
    for i, r in enumerate(rows):
        out_ids[i, : len(r)], out_mask[i, : len(r)] = r, 1
    return out_ids, out_mask


class Batcher:
    """Makes training batches from a precomp split with pre-tokenized captions."""

    def __init__(
        self, split: PrecompSplit, ids: np.ndarray, mask: np.ndarray, vocab: int, unk: int, aug: dict[str, float]
    ) -> None:
        self.split, self.ids, self.mask, self.vocab, self.unk = split, ids, mask, vocab, unk
        self.region_drop, self.text_aug = float(aug.get("region_drop", 0.0)), float(aug.get("text_aug", 0.0))
        self.cap_emb: np.ndarray | None = None  # (5N, D) unit norm, set for graded losses

    def make(self, images: np.ndarray, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        caps = images * CAPS_PER_IMAGE + rng.integers(CAPS_PER_IMAGE, size=len(images))
        regions = np.asarray(self.split.images[np.sort(images)], np.float32)  # memmap reads want sorted rows
        regions = regions[np.argsort(np.argsort(images))]
        lengths = np.full(len(images), regions.shape[1])
        if self.region_drop > 0:
            regions, lengths = drop_regions(regions, self.region_drop, rng)
        ids, mask = self.ids[caps], self.mask[caps]
        ids, mask = ids[:, : mask.sum(1).max()], mask[:, : mask.sum(1).max()]
        if self.text_aug > 0:
            ids, mask = alter_tokens(ids, mask, self.text_aug, self.vocab, self.unk, rng)
        batch = {
            "regions": torch.from_numpy(regions),
            "lengths": torch.from_numpy(lengths),
            "input_ids": torch.from_numpy(ids),
            "attention_mask": torch.from_numpy(mask),
        }
        if self.cap_emb is not None:
            batch["relevance"] = torch.from_numpy(batch_relevance(self.cap_emb, images, caps))
        return batch
