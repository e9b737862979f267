"""``xmr demo-data``, ``xmr train``, ``xmr eval``, ``xmr export``. Heavy imports happen inside commands."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from models.options import TrainOptions, default

console = Console(stderr=True)


def demo_data(
    out: Path = typer.Option(Path("data/demo"), help="Output folder."),
    videos: int = typer.Option(1000, min=1, help="Number of videos."),
    images: int = typer.Option(200, min=0, help="Number of images."),
    seed: int = typer.Option(0, help="Random seed; same seed, same corpus."),
    moment_videos: int = typer.Option(
        120, min=0, help="Long (30-150 s) videos for moment retrieval, written under <out>/long (0 = none)."
    ),
) -> None:
    """Write the demo corpus: mp4 videos of moving digits, captions, moments, splits."""
    from models.data.demo_corpus import build_demo_corpus

    manifest = build_demo_corpus(out, videos=videos, images=images, seed=seed, moment_videos=moment_videos)
    console.print(
        f"[green]wrote[/] {videos} videos + {images} images + {moment_videos} long videos; manifest {manifest}"
    )


def train(
    ctx: typer.Context,
    data: Path = typer.Option(Path("data/demo"), help="Corpus folder (msrvtt.json + manifest.jsonl)."),
    out: Path = typer.Option(Path("runs/demo"), help="Run folder for checkpoints."),
    config: str = typer.Option(default("config"), help="Model config name (models/configs) or path."),
    epochs: int = typer.Option(default("epochs"), min=1),
    batch_size: int = typer.Option(default("batch_size"), min=2),
    lr: float = typer.Option(default("lr"), help="Peak learning rate of the one-cycle schedule."),
    seed: int = typer.Option(default("seed")),
    resume: bool = typer.Option(False, "--resume", help="Continue from <out>/last.pt."),
    max_steps: int = typer.Option(0, help="Stop after this many steps (0 = no limit)."),
    max_minutes: float = typer.Option(0.0, help="Stop after the epoch that passes this budget (0 = none)."),
) -> None:
    """Train the model a config names: the dual encoder on --data's msrvtt.json; image-text configs
    (models/imagetext) on a precomp folder, where options not given take the config's ``train`` values."""
    from models.imagetext.train import is_image_text

    if is_image_text(config):
        from click.core import ParameterSource

        from models.imagetext import cli as it

        given = {
            k: v
            for k, v in {"epochs": epochs, "batch_size": batch_size, "lr": lr}.items()
            if ctx.get_parameter_source(k) != ParameterSource.DEFAULT
        }
        console.print_json(json.dumps(it.train(data, out, config, seed, max_steps, given)))
        return
    from models.train import train as run

    metrics = run(
        TrainOptions(data, out, config, epochs, batch_size, lr, seed, resume, max_steps or None, max_minutes or None)
    )
    console.print_json(json.dumps(metrics))


def evaluate(
    run: Path = typer.Option(Path("runs/demo"), help="Run folder."),
    data: Path = typer.Option(Path("data/demo"), help="Corpus folder."),
    split: str = typer.Option("test", help="train, val or test."),
    out: Path = typer.Option(None, help="Also write the metrics as JSON here."),
    paraphrase: bool = typer.Option(False, "--paraphrase", help="Query with paraphrased captions (videos)."),
) -> None:
    """Text->video and video->text R@1/5/10, MdR, MnR (and text->image) on a split."""
    from models.imagetext import cli as it

    if it.is_image_text_run(run):  # precomp splits: dev, test, testall
        metrics = it.evaluate(run, data, split)
    else:
        from models.checkpoint import load_trained
        from models.data.datasets import load_corpus
        from models.data.paraphrase import paraphrase as rewrite
        from models.evaluate import evaluate_split

        model, tok, cfg = load_trained(run)
        metrics = evaluate_split(
            model, tok, cfg, load_corpus(data), split, data / ".cache", rewrite if paraphrase else None
        )
    if out:
        out.write_text(json.dumps(metrics, indent=2))
    print(json.dumps(metrics, indent=2))  # noqa: T201  (the command's output)


def export(
    run: Path = typer.Option(Path("runs/demo"), help="Run folder."),
    out: Path = typer.Option(None, help="Output folder (default <run>/export)."),
) -> None:
    """Export the text encoder to ONNX (+ tokenizer.json); fails if ONNX and torch differ > 1e-4."""
    from models.checkpoint import load_trained
    from models.export import export_text_encoder

    model, tok, _ = load_trained(run)
    target = out or run / "export"
    err = export_text_encoder(model, tok, target)
    console.print(f"[green]exported[/] {target}/text_encoder.onnx (max |onnx - torch| = {err:.1e})")


def register(app: typer.Typer) -> None:
    app.command("demo-data")(demo_data)
    app.command("train")(train)
    app.command("eval")(evaluate)
    app.command("export")(export)
    from models.imagetext.cli import register as register_imagetext

    register_imagetext(app)
