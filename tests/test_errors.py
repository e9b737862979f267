"""Each known fault, from a real bad input, ends as one line on stderr naming the problem, exit code 2.

Subprocess cases run the real console script; the ONNX parity failure runs ``xmr.cli.main`` in-process
so the check can be made to fail (a patched ``max_abs_diff``) on an otherwise good export.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import models.export
from indexer.config import IndexSettings
from models.factory import build_model, load_config
from service.cli import settings_env
from service.config import Settings
from xmr import cli
from xmr.errors import ConfigError, DataError
from xmr.settings import build_settings

XMR = str(Path(sys.executable).parent / "xmr")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([XMR, *args], capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})


def one_line_error(out: subprocess.CompletedProcess[str] | tuple[int, str], message: str) -> None:
    code, err = (out.returncode, out.stderr) if isinstance(out, subprocess.CompletedProcess) else out
    lines = [ln for ln in err.splitlines() if " INFO " not in ln]  # logging from libraries, not the error
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0], err
    assert "Traceback" not in err


def msrvtt(tmp: Path, videos: list[dict[str, str]], text: str | None = None) -> Path:
    (tmp / "msrvtt.json").write_text(text if text is not None else json.dumps({"videos": videos, "sentences": []}))
    return tmp


def test_empty_training_split(tmp_path: Path) -> None:
    data = msrvtt(tmp_path, [{"video_id": "v0", "split": "test", "url": "v0.mp4"}])
    out = run("train", "--data", str(data), "--out", str(tmp_path / "run"))
    one_line_error(out, "training split is empty")


def test_malformed_annotation_file_names_file_and_line(tmp_path: Path) -> None:
    out = run("train", "--data", str(msrvtt(tmp_path, [], text='{"videos": [\n')), "--out", str(tmp_path / "run"))
    one_line_error(out, f"{tmp_path}/msrvtt.json: not valid JSON")


def test_unknown_config_name(corpus: Path, tmp_path: Path) -> None:
    out = run("train", "--data", str(corpus), "--out", str(tmp_path), "--config", "no_such_model")
    one_line_error(out, "model config 'no_such_model' not found; known: [")


def test_config_naming_an_unknown_architecture(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text('{"arch": "no_such_arch"}')
    with pytest.raises(ConfigError, match="unknown model 'no_such_arch'; known: \\['dual_encoder'"):
        build_model(load_config(str(tmp_path / "c.json")), 100)
    (tmp_path / "broken.json").write_text('{"arch": ')
    with pytest.raises(ConfigError, match="broken.json: not valid JSON"):
        load_config(str(tmp_path / "broken.json"))


def test_missing_and_corrupt_checkpoints(trained_run: Path, tmp_path: Path) -> None:
    one_line_error(run("export", "--run", str(tmp_path)), f"no checkpoint at {tmp_path}/last.pt")
    run_dir = tmp_path / "corrupt"
    shutil.copytree(trained_run, run_dir)
    (run_dir / "last.pt").write_bytes((trained_run / "last.pt").read_bytes()[:1000])  # a torn write
    one_line_error(run("eval", "--run", str(run_dir)), f"{run_dir}/last.pt: not a readable checkpoint")


def test_resuming_from_a_corrupt_checkpoint(corpus: Path, trained_run: Path, tmp_path: Path) -> None:
    for name in ("config.json", "tokenizer.json"):
        shutil.copy2(trained_run / name, tmp_path / name)
    (tmp_path / "last.pt").write_text("not a checkpoint")
    out = run("train", "--data", str(corpus), "--out", str(tmp_path), "--config", "baseline_tiny", "--resume")
    one_line_error(out, f"{tmp_path}/last.pt: not a readable checkpoint")


def test_failed_onnx_parity_check(
    trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real export whose torch-vs-ONNX Runtime comparison reports a difference of 0.5."""
    monkeypatch.setattr(models.export, "max_abs_diff", lambda *a: 0.5)
    monkeypatch.setattr(sys, "argv", ["xmr", "export", "--run", str(trained_run), "--out", str(tmp_path)])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    one_line_error((int(exc.value.code or 0), capsys.readouterr().err), "differs from torch by 5.00e-01 (> atol")


def test_bad_setting_names_its_environment_variable(tmp_path: Path) -> None:
    out = run("index", "build", str(tmp_path / "m.jsonl"), env={"XMR_INDEX_SHARD_SIZE": "many"})
    one_line_error(out, "XMR_INDEX_SHARD_SIZE='many': Input should be a valid integer")
    one_line_error(run("serve", "--root", str(tmp_path / "nope")), "is not a directory")


def test_options_override_environment_over_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XMR_INDEX_KEEP", "7")
    assert build_settings(IndexSettings).index_keep == 7
    assert build_settings(IndexSettings, index_keep=2, root=None).index_keep == 2
    assert build_settings(IndexSettings).root == Path("bundles")


def test_settings_survive_the_environment_hand_off_to_uvicorn_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    given = Settings(root=Path("/srv/b"), port=9123, default_collection="c", batch_wait_ms=2.5, verify_checksums=False)
    for key, value in settings_env(given).items():
        monkeypatch.setenv(key, value)
    assert Settings() == given


def test_data_errors_are_xmr_errors() -> None:
    """The CLI translates XmrError only: a builtin raised for bad data would be a traceback."""
    from models.data.datasets import read_msrvtt

    with pytest.raises(DataError, match="nowhere/msrvtt.json not found"):
        read_msrvtt(Path("/nowhere/msrvtt.json"))


def test_a_late_import_of_a_train_module_is_the_same_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Where the up-front check passes but a train-extra module still fails to import (a partial
    install), the user gets the same line; any other missing module stays a traceback (a bug)."""

    def broken(name: str) -> object:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    monkeypatch.setattr(cli, "require_train_extra", lambda command: None)
    monkeypatch.setattr(sys, "argv", ["xmr", "train"])
    monkeypatch.setattr(cli, "build_app", lambda command: broken("torch.nn"))
    with pytest.raises(SystemExit) as exc:
        cli.main()
    one_line_error((int(exc.value.code or 0), capsys.readouterr().err), "(torch missing): pip install 'xmr[train]'")
    monkeypatch.setattr(cli, "build_app", lambda command: broken("not_ours"))
    with pytest.raises(ModuleNotFoundError, match="not_ours"):
        cli.main()
