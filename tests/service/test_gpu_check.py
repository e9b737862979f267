"""The execution providers the service asks ONNX Runtime for, and benchmarks/gpu_check.py, the prepared script
for a lent GPU machine, run here on the CPU so that it works when a GPU session has minutes for it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import bundle
from service.encoder import QueryEncoder, providers

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("available", "want"),
    [
        # onnxruntime-gpu lists TensorRT first: it would build an engine per query length
        (
            ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
            ["CUDAExecutionProvider", "CPUExecutionProvider"],
        ),
        (["AzureExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"]),  # a remote provider: never
        ([], ["CPUExecutionProvider"]),
    ],
)
def test_the_service_asks_for_cuda_then_the_cpu(available: list[str], want: list[str]) -> None:
    assert providers(available) == want


def test_cuda_libraries_are_preloaded_once_when_the_build_has_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime as ort

    import service.encoder as encoder

    calls: list[int] = []
    monkeypatch.setattr(ort, "preload_dlls", lambda: calls.append(1))
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    encoder.preload_cuda.cache_clear()
    try:
        assert providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"] == providers()
        assert calls == [1]
        monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
        encoder.preload_cuda.cache_clear()
        assert providers() == ["CPUExecutionProvider"] and calls == [1]  # the CPU build: nothing to load
    finally:
        encoder.preload_cuda.cache_clear()


def test_sessions_get_only_the_preferred_providers(bundle_root: Path) -> None:
    version = bundle_root / "demo" / str(bundle.read_current(bundle_root, "demo"))
    got = QueryEncoder(version).session.get_providers()
    assert got == providers() and "AzureExecutionProvider" not in got


def test_gpu_check_runs_and_its_oracles_hold(bundle_root: Path, tmp_path: Path) -> None:
    version = bundle_root / "demo" / str(bundle.read_current(bundle_root, "demo"))
    cmd = [
        sys.executable,
        "benchmarks/gpu_check.py",
        "--bundle",
        str(version),
        "--seconds",
        "0.3",
        "--out",
        str(tmp_path),
    ]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, timeout=300)
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    assert result["encoder_providers"] == providers()
    assert result["cuda"] is ("CUDAExecutionProvider" in providers())
    assert result["oracles_max_abs_diff"]["provider_vs_cpu"] <= 1e-4
    assert result["oracles_max_abs_diff"]["batched_vs_one_at_a_time"] <= 1e-4
    assert result["service_qps"]["batching_on"] > 0 and result["service_qps"]["batching_off"] > 0
    assert "batching on ÷ off" in (tmp_path / "gpu_check.md").read_text()
