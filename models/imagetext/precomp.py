"""Reader (and writer) for the VSE/SCAN "precomp" layout used by the image-text papers' code.

A data folder holds, per split (train, dev, test, testall)::

    {split}_ims.npy     (N, K, D) float region features (BUTD: K=36, D=2048), or (N, D) pooled
    {split}_caps.txt    5 * N lines: the 5 captions of image 0, then of image 1, ... (image order)

and, written by xmr's demo set only (optional; real data sets do not have them):

    {split}_ids.txt     N lines: the item id of each image (links rows to the manifest's files)
    {split}_facts.json  {"images": [[fact, ...]] * N, "captions": [[fact, ...]] * 5N}: what each
                        image shows and what each caption claims; graded relevance for NDCG

Malformed folders are refused with a ``PrecompError`` naming the file and the problem.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xmr.errors import DataError

SPLITS = ("train", "dev", "test", "testall")
CAPS_PER_IMAGE = 5


class PrecompError(DataError):
    """A precomp data folder is missing a split, or a file has the wrong shape or caption count."""


@dataclass
class PrecompSplit:
    """One split: regions (N, K, D) float32 (pooled data has K=1) and 5 captions per image."""

    name: str
    images: np.ndarray
    captions: list[str]
    ids: list[str]
    facts: dict[str, list[list[str]]] | None = None

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def image_of_caption(self) -> np.ndarray:
        """(5N,) index of the image each caption describes."""
        return np.arange(len(self.captions)) // CAPS_PER_IMAGE


def paths(root: Path, split: str) -> dict[str, Path]:
    """The files of ``split`` under ``root`` (one owner for the names)."""
    return {k: root / f"{split}_{k}" for k in ("ims.npy", "caps.txt", "ids.txt", "facts.json")}


def read_split(root: Path, split: str) -> PrecompSplit:
    """Read and check one split; region features are memory-mapped (real sets are tens of GB)."""
    p = paths(root, split)
    for key in ("ims.npy", "caps.txt"):
        if not p[key].is_file():
            have = sorted(s for s in SPLITS if paths(root, s)["ims.npy"].is_file())
            raise PrecompError(f"{p[key]}: missing (split {split!r}; splits present in {root}: {have})")
    images = _read_images(p["ims.npy"])
    captions = p["caps.txt"].read_text(encoding="utf-8").splitlines()
    if len(captions) != CAPS_PER_IMAGE * len(images):
        raise PrecompError(
            f"{p['caps.txt']}: {len(captions)} captions for {len(images)} images in {p['ims.npy'].name}; "
            f"expected {CAPS_PER_IMAGE} per image ({CAPS_PER_IMAGE * len(images)})"
        )
    ids = p["ids.txt"].read_text().splitlines() if p["ids.txt"].is_file() else [str(i) for i in range(len(images))]
    if len(ids) != len(images):
        raise PrecompError(f"{p['ids.txt']}: {len(ids)} ids for {len(images)} images")
    facts = json.loads(p["facts.json"].read_text()) if p["facts.json"].is_file() else None
    if facts is not None and (len(facts["images"]), len(facts["captions"])) != (len(images), len(captions)):
        raise PrecompError(
            f"{p['facts.json']}: fact lists do not match {len(images)} images / {len(captions)} captions"
        )
    return PrecompSplit(split, images, captions, ids, facts)


def _read_images(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, mmap_mode="r")
    except (ValueError, OSError) as exc:
        raise PrecompError(f"{path}: not a readable .npy array ({exc})") from exc
    if arr.ndim == 2:  # pooled features: one "region" per image
        arr = arr[:, None, :]
    if arr.ndim != 3:
        raise PrecompError(f"{path}: rank {arr.ndim} array of shape {arr.shape}; expected (N, K, D) or (N, D)")
    if not np.issubdtype(arr.dtype, np.floating):
        raise PrecompError(f"{path}: dtype {arr.dtype}; expected float features")
    return arr


def write_split(root: Path, split: PrecompSplit) -> None:
    """Write ``split`` in the precomp layout (demo set, tests)."""
    root.mkdir(parents=True, exist_ok=True)
    p = paths(root, split.name)
    np.save(p["ims.npy"], np.asarray(split.images, np.float32))
    p["caps.txt"].write_text("".join(c + "\n" for c in split.captions), encoding="utf-8")
    p["ids.txt"].write_text("".join(i + "\n" for i in split.ids))
    if split.facts is not None:
        p["facts.json"].write_text(json.dumps(split.facts))
