"""``xmr moments train|predict|eval`` and ``export_moment_head`` on a real retrieval run and real long mp4s."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bundle import MOMENT_HEAD, TOKENIZER
from models.moments.export import export_moment_head
from models.moments.heads import NoMomentHead
from xmr.errors import XmrError

XMR = str(Path(sys.executable).parent / "xmr")


def xmr(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([XMR, *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def long_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from models.data.demo_moments import build_long_moments

    out = tmp_path_factory.mktemp("long")
    build_long_moments(out, 8, seed=2)
    return out


def _fresh_run(trained_run: Path, dst: Path) -> Path:
    """A copy of the session's retrieval run (heads are written into a run; the shared one stays clean)."""
    dst.mkdir()
    for f in ("last.pt", "config.json", TOKENIZER):
        shutil.copy2(trained_run / f, dst / f)
    return dst


@pytest.mark.slow
def test_train_resume_export_predict_eval(long_data: Path, trained_run: Path, tmp_path: Path) -> None:
    run = _fresh_run(trained_run, tmp_path / "run")
    res = xmr("moments", "train", "--data", str(long_data), "--run", str(run), "--head", "cdnet", "--epochs", "1")
    assert res.returncode == 0, res.stderr
    cfg = json.loads((run / "moments" / "config.json").read_text())
    assert cfg["head"] == "cdnet" and cfg["clip_rate"] == 2.0 and cfg["span_clips"] >= 60  # >= 30 s at 2 clips/s
    res = xmr("moments", "train", "--data", str(long_data), "--run", str(run), "--resume", "--epochs", "2")
    assert res.returncode == 0, res.stderr
    epochs = [json.loads(ln)["epoch"] for ln in (run / "moments" / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [0, 1]  # the second call resumed after epoch 0 instead of starting over

    entry = export_moment_head(run, tmp_path / "bundle")
    assert (tmp_path / "bundle" / MOMENT_HEAD).is_file()
    assert entry["name"] == "cdnet" and entry["span_clips"] == cfg["span_clips"] and entry["clip_rate"] == 2.0
    assert entry["onnx_max_abs_diff"] <= 1e-4

    val = long_data / "moments_val.jsonl"
    res = xmr(
        "moments",
        "predict",
        "--data",
        str(long_data),
        "--run",
        str(run),
        "--queries",
        str(val),
        "--out",
        str(tmp_path / "preds.jsonl"),
    )
    assert res.returncode == 0, res.stderr
    gt = [json.loads(ln) for ln in val.read_text().splitlines()]
    preds = [json.loads(ln) for ln in (tmp_path / "preds.jsonl").read_text().splitlines()]
    assert [p["qid"] for p in preds] == [g["qid"] for g in gt]
    for p, g in zip(preds, gt, strict=True):
        assert 1 <= len(p["pred_relevant_windows"]) <= 10
        assert all(0 <= s < e <= g["duration"] for s, e, _ in p["pred_relevant_windows"])
        scores = [w[2] for w in p["pred_relevant_windows"]]
        assert scores == sorted(scores, reverse=True)
        assert len(p["pred_saliency_scores"]) == int(g["duration"] / 2)
    res = xmr("moments", "eval", "--submission", str(tmp_path / "preds.jsonl"), "--gt", str(val))
    assert res.returncode == 0, res.stderr
    assert set(json.loads(res.stdout)["brief"]) >= {"MR-full-mAP", "MR-full-R1@0.5", "HL-min-VeryGood-Hit1"}


@pytest.mark.slow
def test_sliding_window_trains_by_writing_its_config_and_exports(
    long_data: Path, trained_run: Path, tmp_path: Path
) -> None:
    from models.moments.train import MomentTrainOptions, train_head

    run = _fresh_run(trained_run, tmp_path / "run")
    train_head(MomentTrainOptions(long_data, run, "sliding_window", validate=False))
    assert json.loads((run / "moments" / "config.json").read_text())["head"] == "sliding_window"
    assert export_moment_head(run, tmp_path / "out")["name"] == "sliding_window"


def test_export_without_a_head_names_the_folder(trained_run: Path, tmp_path: Path) -> None:
    run = _fresh_run(trained_run, tmp_path / "run")
    with pytest.raises(NoMomentHead, match=rf"{run}/moments: no moment head") as err:
        export_moment_head(run, tmp_path / "out")
    assert isinstance(err.value, XmrError)


def test_cli_refuses_bad_moment_input_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "gt.jsonl").write_text('{"qid": 1}\nnot json\n')
    res = xmr("moments", "eval", "--submission", str(tmp_path / "gt.jsonl"), "--gt", str(tmp_path / "gt.jsonl"))
    assert res.returncode == 2 and "gt.jsonl:2: not json" in " ".join(res.stderr.split())
    assert "Traceback" not in res.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cdnet", "sliding_window"])
def test_real_head_in_a_bundle_serves_the_same_top_moment(
    name: str, long_data: Path, trained_run: Path, tmp_path: Path
) -> None:
    """``xmr index build`` exports the real head; the service's ONNX path finds the top window that
    ``predict`` (torch, same clip features) finds for a video within the head's span."""
    from bundle import verify
    from indexer.build import build
    from models.moments.data import read_qvhighlights
    from models.moments.features import clip_features
    from models.moments.heads import load_head
    from models.moments.predict import predict
    from models.moments.train import MomentTrainOptions, train_head
    from models.tokenizer import load_tokenizer
    from service.store import load_bundle

    run = _fresh_run(trained_run, tmp_path / "run")
    train_head(MomentTrainOptions(long_data, run, name, epochs=1, validate=False))
    report = build(long_data / "manifest.jsonl", "long", tmp_path / "bundles", run, batch_size=4)
    entry = verify(report.path)["moment_head"]
    assert entry["name"] == name
    assert entry.get("clip_side", []) == (["qsd_clip_scale"] if name == "cdnet" else [])  # stored per clip
    live = load_bundle(report.path)
    assert live.moments is not None
    q = read_qvhighlights(long_data / "moments_val.jsonl")[0]
    item = live.searcher.item_by_id(q.vid)
    assert item is not None
    row = item.row
    (loc,) = live.moments.localize(q.query, [(row, item.duration)], 3)
    head = load_head(run)
    (want,) = predict(head, load_tokenizer(run / TOKENIZER), [q], clip_features(run, long_data, [q.vid]), 2.0)
    top = loc.moments[0]
    assert all(0 <= m.start < m.end <= q.duration for m in loc.moments)
    assert [top.start, top.end] == pytest.approx(want["pred_relevant_windows"][0][:2], abs=0.01)
