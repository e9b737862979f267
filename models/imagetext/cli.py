"""``xmr demo-imagetext`` and the image-text branches of ``xmr train`` / ``xmr eval`` (chosen by the config)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

console = Console(stderr=True)


def demo_imagetext(
    out: Path = typer.Option(Path("data/imagetext"), help="Output folder (precomp layout + images + manifest)."),
    images: int = typer.Option(3000, min=20, help="Number of images (5 captions each)."),
    seed: int = typer.Option(0, help="Random seed; same seed, same data."),
) -> None:
    """Write the image-text demo set: PNGs, 5 captions per image, grid region features (precomp layout)."""
    from models.imagetext.demo import build_imagetext_demo

    manifest = build_imagetext_demo(out, images=images, seed=seed)
    console.print(f"[green]wrote[/] {images} images x 5 captions (train/dev/test precomp) + manifest {manifest}")


def train(data: Path, out: Path, config: str, seed: int, max_steps: int, hp: dict[str, Any]) -> dict[str, Any]:
    """``xmr train`` for an image-text config; ``hp`` (epochs, batch_size, lr) overrides the config's."""
    from models.imagetext.train import ImageTextOptions, train_image_text

    return train_image_text(ImageTextOptions(data, out, config, seed, train=hp, max_steps=max_steps or None))


def evaluate(run: Path, data: Path, split: str) -> dict[str, Any]:
    """``xmr eval`` for an image-text run on a precomp split (dev, test, testall)."""
    from models.checkpoint import load_trained
    from models.imagetext.evaluate import evaluate_split
    from models.imagetext.precomp import read_split

    model, tok, _ = load_trained(run)
    return evaluate_split(model, tok, read_split(data, split))


def is_image_text_run(run: Path) -> bool:
    cfg = run / "config.json"
    return cfg.is_file() and json.loads(cfg.read_text()).get("task") == "image_text"


def register(app: typer.Typer) -> None:
    app.command("demo-imagetext")(demo_imagetext)
