"""Image-text demo set: PNG images of coloured digits over photographs, 5 different captions each,
written in the VSE/SCAN precomp layout (region features + captions) plus a manifest for indexing.

Each image shows 1-3 digits, one per quadrant, each with a colour, over a dimmed scikit-image
photograph. The five captions describe it in five ways (everything; one digit and where it is;
how many digits on which photo; the colours; the numbers), so captions of *other* images are
often partly or wholly true of an image: relevance is graded, as in real Flickr30K/COCO data.
Every image and caption carries its "facts"; relevance(image, caption) = the fraction of the
caption's facts that hold in the image (``{split}_facts.json``), used for NDCG.

    <out>/images/<id>.png        96x96 RGB
    <out>/manifest.jsonl         one line per image (id, modality, uri, title, captions, split)
    <out>/{split}_ims.npy        (N, 36, 192) grid features (models/imagetext/features.py)
    <out>/{split}_caps.txt, {split}_ids.txt, {split}_facts.json
    <out>/features.json          the feature extractor's spec (a trained model copies it)

Deterministic for a seed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from models.data.demo_corpus import COLORS, _glyphs, _paint, _photos
from models.imagetext.features import default_spec, extract
from models.imagetext.precomp import PrecompSplit, write_split

log = logging.getLogger(__name__)

SIZE = 96
QUADRANTS = {"top left": (0, 0), "top right": (1, 0), "bottom left": (0, 1), "bottom right": (1, 1)}
NUMBER_WORDS = {1: "one", 2: "two", 3: "three"}
FEATURES_SPEC = "features.json"


def _objects(rng: np.random.Generator, labels: np.ndarray) -> list[dict[str, Any]]:
    n = int(rng.choice([1, 2, 3], p=[0.3, 0.4, 0.3]))
    quads = rng.choice(list(QUADRANTS), size=n, replace=False)
    return [
        {"glyph": int(g), "digit": int(labels[g]), "color": str(rng.choice(list(COLORS))), "where": str(q)}
        for g, q in zip(rng.integers(len(labels), size=n), quads, strict=True)
    ]


def render(objs: list[dict[str, Any]], photo: np.ndarray, glyphs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The (SIZE, SIZE, 3) uint8 image: dimmed photo, each digit at a jittered spot in its quadrant."""
    canvas = (photo.astype(np.float32) * 0.45).astype(np.uint8)
    half, side = SIZE // 2, glyphs.shape[1]
    for o in objs:
        qx, qy = QUADRANTS[o["where"]]
        x, y = (int(v) for v in rng.integers(0, half - side + 1, size=2))
        _paint(canvas, glyphs[o["glyph"]], o["color"], qx * half + x, qy * half + y)
    return canvas


def image_facts(objs: list[dict[str, Any]], photo: str) -> list[str]:
    """Everything true of the image, as atomic facts."""
    facts = {f"photo:{photo}", f"count:{len(objs)}"}
    for o in objs:
        obj = f"{o['color']} {o['digit']}"
        facts |= {f"digit:{o['digit']}", f"color:{o['color']}", f"obj:{obj}", f"at:{obj}@{o['where']}"}
    return sorted(facts)


def captions(objs: list[dict[str, Any]], photo: str, rng: np.random.Generator) -> list[tuple[str, list[str]]]:
    """Five different (caption, facts it claims) for one image."""
    order = [objs[i] for i in rng.permutation(len(objs))]
    names = [f"{o['color']} {o['digit']}" for o in order]
    one = order[0]
    colors = list(dict.fromkeys(o["color"] for o in order))
    digits = list(dict.fromkeys(str(o["digit"]) for o in order))
    count = f"{NUMBER_WORDS[len(objs)]} digit{'s' if len(objs) > 1 else ''}"
    return [
        (
            " and ".join(f"a {n}" for n in names) + f" on a photo of {photo}",
            [f"obj:{n}" for n in names] + [f"photo:{photo}"],
        ),
        (f"a {names[0]} in the {one['where']}", [f"obj:{names[0]}", f"at:{names[0]}@{one['where']}"]),
        (f"{count} over the {photo} picture", [f"count:{len(objs)}", f"photo:{photo}"]),
        (" and ".join(colors) + " digits on a photo", [f"color:{c}" for c in colors]),
        ("the number" + ("s " if len(digits) > 1 else " ") + " and ".join(digits), [f"digit:{d}" for d in digits]),
    ]


def _split_of(i: int, n: int) -> str:
    frac = i / max(n, 1)
    return "train" if frac < 0.8 else ("dev" if frac < 0.9 else "test")


def build_imagetext_demo(out: Path, images: int = 3000, seed: int = 0) -> Path:
    """Write the image-text demo set under ``out``; return the manifest path."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    glyphs, labels = _glyphs()
    photos = [(name, np.asarray(Image.fromarray(p).resize((SIZE, SIZE), Image.BILINEAR))) for name, p in _photos()]
    rows: dict[str, dict[str, list[Any]]] = {}
    manifest = []
    for i in range(images):
        iid, split = f"im{i:05d}", _split_of(i, images)
        name, photo = photos[int(rng.integers(len(photos)))]
        objs = _objects(rng, labels)
        pixels = render(objs, photo, glyphs, rng)
        Image.fromarray(pixels).save(out / "images" / f"{iid}.png")
        caps = captions(objs, name, rng)
        r = rows.setdefault(split, {"ids": [], "pixels": [], "caps": [], "cap_facts": [], "im_facts": []})
        r["ids"].append(iid)
        r["pixels"].append(pixels)
        r["caps"] += [c for c, _ in caps]
        r["cap_facts"] += [f for _, f in caps]
        r["im_facts"].append(image_facts(objs, name))
        cap_rows = [{"caption": c} for c, _ in caps]
        manifest.append(
            {
                "id": iid,
                "modality": "image",
                "uri": f"images/{iid}.png",
                "title": caps[0][0],
                "captions": cap_rows,
                "split": split,
                "tags": [name],
            }
        )
    spec = default_spec()
    (out / FEATURES_SPEC).write_text(json.dumps(spec))
    for split, r in rows.items():
        feats = extract(np.stack(r["pixels"]), spec)  # (N, 36, 192)
        facts = {"images": r["im_facts"], "captions": r["cap_facts"]}
        write_split(out, PrecompSplit(split, feats, r["caps"], r["ids"], facts))
    path = out / "manifest.jsonl"
    path.write_text("".join(json.dumps(m) + "\n" for m in manifest))
    log.info("image-text demo set: %d images -> %s", images, out)
    return path
