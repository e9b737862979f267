"""Training through configs: every loss (VSE++) and RVSE++ with SelHN learn on the tiny demo set - the
loss falls and dev rSum clears an untrained model's by a wide margin - and the CLI dispatches by config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from models.factory import build_model
from models.imagetext.evaluate import evaluate_split
from models.imagetext.precomp import read_split
from models.imagetext.train import ImageTextOptions, prepare, train_image_text
from tests.models.imagetext.conftest import TINY
from xmr.cli import build_app

LOSSES = ["triplet_hn", "triplet_sum", "selhn", "bcls", "listwise", "unified"]
FAST = {**TINY, "pseudo_labels": "bow"}  # bag-of-words pseudo-labels: no MiniLM load in tests
HP = {"batch_size": 16, "lr": 5e-3}
WIDE = 60.0  # rSum points (of 600) above the untrained model


@pytest.fixture(scope="module")
def untrained_rsum(it_data: Path, tmp_path_factory: pytest.TempPathFactory) -> float:
    torch.manual_seed(0)
    opts = ImageTextOptions(it_data, tmp_path_factory.mktemp("untrained"), "rvsepp_selhn", 0, FAST)
    cfg, tok = prepare(opts, read_split(it_data, "train"))
    return float(evaluate_split(build_model(cfg, tok.get_vocab_size()).eval(), tok, read_split(it_data, "dev"))["rsum"])


@pytest.mark.slow
@pytest.mark.parametrize("config", [f"vsepp_{loss}" for loss in LOSSES] + ["rvsepp_selhn"])
def test_config_trains_and_beats_an_untrained_model(
    config: str, it_data: Path, tmp_path: Path, untrained_rsum: float
) -> None:
    final = train_image_text(ImageTextOptions(it_data, tmp_path, config, 0, FAST, HP, max_steps=240, eval_every=240))
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "eval" not in r]
    assert sum(losses[-20:]) < sum(losses[:20])
    assert final["rsum"] > untrained_rsum + WIDE, (final["rsum"], untrained_rsum)


def test_cli_trains_and_evaluates_an_image_text_config(it_data: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "run"
    args = ["train", "--config", "rvsepp_selhn", "--data", str(it_data), "--out", str(out), "--max-steps", "3"]
    r = runner.invoke(build_app("train"), [*args, "--batch-size", "16"])
    assert r.exit_code == 0, r.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["arch"] == "rvsepp" and cfg["loss"] == "selhn" and cfg["train"]["batch_size"] == 16
    assert cfg["features"]["grid"] == 6 and (out / "last.pt").is_file()
    r = runner.invoke(build_app("eval"), ["eval", "--run", str(out), "--data", str(it_data), "--split", "test"])
    assert r.exit_code == 0, r.output
    metrics = json.loads(r.stdout[r.stdout.index("{") :])
    assert metrics["n_images"] == 24 and 0 <= metrics["rsum"] <= 600 and 0 <= metrics["ndcg_t2i"] <= 1


def test_demo_command_writes_the_precomp_layout(tmp_path: Path) -> None:
    r = CliRunner().invoke(build_app("demo-imagetext"), ["demo-imagetext", "--out", str(tmp_path), "--images", "20"])
    assert r.exit_code == 0, r.output
    test = read_split(tmp_path, "test")
    assert test.images.shape == (2, 36, 192) and len(test.captions) == 10 and test.facts is not None
    assert len(set(test.captions[:5])) == 5  # five different captions per image
    assert (tmp_path / "images" / f"{test.ids[0]}.png").is_file()
