"""The console script: known faults end in one clear line and exit code 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

XMR = str(Path(sys.executable).parent / "xmr")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([XMR, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("index", "build", "/nonexistent/manifest.jsonl"), "manifest not found"),
        (("eval", "--run", "/nonexistent/run"), "no checkpoint at /nonexistent/run/last.pt"),
        (("train", "--data", "/nonexistent"), "msrvtt.json not found"),
        (("serve", "--root", "/nonexistent"), "is not a directory"),
        (("serve-moments", "--root", "/nonexistent"), "is not a directory"),
        (("demo-data", "--videos", "0"), "Invalid value for '--videos'"),
    ],
)
def test_bad_cli_input_is_one_clear_error(args: tuple[str, ...], message: str) -> None:
    out = run(*args)
    assert out.returncode == 2
    assert message in " ".join(out.stderr.split())  # rich wraps long lines
    assert "Traceback" not in out.stderr


def test_index_build_reports_unreadable_media_and_publishes_the_rest(
    corpus: Path, trained_run: Path, tmp_path: Path
) -> None:
    (tmp_path / "m.jsonl").write_text(
        f'{{"id": "ok", "uri": "{corpus}/videos/vid00000.mp4"}}\n{{"id": "gone", "uri": "{tmp_path}/gone.mp4"}}\n'
    )
    out = run(
        "index",
        "build",
        str(tmp_path / "m.jsonl"),
        "--collection",
        "c",
        "--root",
        str(tmp_path / "b"),
        "--model",
        str(trained_run),
    )
    text = " ".join(out.stderr.split())
    assert out.returncode == 0, out.stderr
    assert "skipped" in text and "gone.mp4" in text and "file not found" in text
    assert "published c/" in text and "'video': 1" in text
    assert (tmp_path / "b" / "c" / "CURRENT").is_file()
