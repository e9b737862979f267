"""``xmr moments train|predict|eval``. Heavy imports (torch) happen inside the commands."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True)
app = typer.Typer(help="Moment retrieval heads: train, predict, evaluate.", no_args_is_help=True)


@app.command("train")
def train(
    data: Path = typer.Option(..., help="Folder with moments_{train,val}.jsonl and the videos (manifest.jsonl)."),
    run: Path = typer.Option(..., help="Trained retrieval run (clip and query features come from it)."),
    head: str = typer.Option(
        "cdnet",
        help="cdnet, span_regression or sliding_window, or a config of one under models/moments/configs "
        "(cdnet_serve: cdnet at about half the serving cost, docs/results.md).",
    ),
    out: Path = typer.Option(None, help="Head run folder (default <run>/moments)."),
    epochs: int = typer.Option(None, min=0, help="Default: the head config's."),
    batch_size: int = typer.Option(None, min=2),
    lr: float = typer.Option(None),
    seed: int = typer.Option(0),
    resume: bool = typer.Option(False, "--resume", help="Continue from <out>/last.pt."),
    no_qsd: bool = typer.Option(False, "--no-qsd", help="cdnet ablation: alignment a_i = 1, no QSD losses."),
    no_cdd: bool = typer.Option(False, "--no-cdd", help="cdnet ablation: no deformable denoising (K = 0)."),
) -> None:
    """Train a moment head on a retrieval run's clip features; checkpoints every epoch."""
    from models.moments.train import MomentTrainOptions, train_head

    overrides = {**({"use_qsd": False} if no_qsd else {}), **({"cdd_points": 0} if no_cdd else {})}
    opts = MomentTrainOptions(data, run, head, out, epochs, batch_size, lr, seed, resume, overrides)
    metrics = train_head(opts)
    console.print_json(json.dumps(metrics.get("brief", {})))


@app.command("predict")
def predict(
    data: Path = typer.Option(..., help="Folder with the videos (manifest.jsonl or videos/)."),
    run: Path = typer.Option(..., help="Retrieval run with a head in <run>/moments."),
    queries: Path = typer.Option(..., help="QVHighlights jsonl (qid, query, vid, duration)."),
    out: Path = typer.Option(..., help="Submission jsonl to write."),
    gt_clip: float = typer.Option(2.0, help="Seconds per GT clip for pred_saliency_scores (QVHighlights: 2)."),
) -> None:
    """Moment-DETR submission jsonl: pred_relevant_windows (start, end, score in seconds) + pred_saliency_scores."""
    from bundle import TOKENIZER
    from models.moments.data import check_vids, read_qvhighlights, video_paths
    from models.moments.features import clip_features
    from models.moments.heads import load_head
    from models.moments.predict import predict as run_predict
    from models.tokenizer import load_tokenizer

    qs = read_qvhighlights(queries)
    check_vids(qs, set(video_paths(data)))
    head = load_head(run)
    feats = clip_features(run, data, [q.vid for q in qs])
    rows = run_predict(head, load_tokenizer(run / TOKENIZER), qs, feats, head.cfg["clip_rate"], gt_clip=gt_clip)
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    console.print(f"[green]wrote[/] {len(rows)} predictions to {out}")


@app.command("eval")
def evaluate(
    submission: Path = typer.Option(..., help="Submission jsonl (Moment-DETR format)."),
    gt: Path = typer.Option(..., help="Ground truth jsonl (QVHighlights format)."),
    out: Path = typer.Option(None, help="Also write the metrics json here."),
    clip_length: float = typer.Option(2.0, help="Seconds per GT saliency clip (QVHighlights: 2)."),
) -> None:
    """The official QVHighlights evaluation (same JSON structure and values)."""
    from models.moments.data import read_jsonl
    from models.moments.metrics import eval_submission

    metrics = eval_submission(read_jsonl(submission), read_jsonl(gt), clip_length)
    text = json.dumps(metrics, indent=4)
    if out:
        out.write_text(text)
    print(text)  # noqa: T201  (the command's output)
