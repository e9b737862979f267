"""Query encoding: the bundle's tokenizer + text encoder graph in ONNX Runtime (no torch)."""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from bundle import TEXT_ENCODER, TEXT_ENCODER_INPUTS, TEXT_ENCODER_OUTPUT, TOKENIZER

log = logging.getLogger(__name__)

# The execution providers the service uses, best first, from those this ONNX Runtime build has: CUDA when
# the GPU build (onnxruntime-gpu) is installed, else the CPU. Never everything available: the GPU build also
# lists TensorRT (first, and it builds an engine per input shape: minutes for a dynamic-length query) and
# recent builds list Azure's remote provider.
PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


def providers(available: list[str] | None = None) -> list[str]:
    """The providers an ONNX Runtime session of the service asks for (``available``: the build's). With this
    build's CUDA provider, its CUDA and cuDNN libraries are loaded first (``preload_cuda``)."""
    have = ort.get_available_providers() if available is None else available
    chosen = [p for p in PREFERRED_PROVIDERS if p in have] or ["CPUExecutionProvider"]
    if available is None and "CUDAExecutionProvider" in chosen:
        preload_cuda()
    return chosen


@functools.cache
def preload_cuda() -> None:
    """Load the CUDA and cuDNN libraries of pip's ``nvidia-*`` packages (``onnxruntime-gpu[cuda,cudnn]``, or
    PyTorch's), once per process: without them on the loader's path the CUDA provider fails to load and ONNX
    Runtime falls back to the CPU. Libraries installed system-wide (the GPU image's) are found either way."""
    try:
        ort.preload_dlls()
    except Exception as exc:  # an older build without it, or libraries it cannot find: ORT's own search goes on
        log.warning("onnxruntime.preload_dlls() failed (%s); the CUDA provider relies on the loader's path", exc)


class QueryEncoder:
    """Loaded once per bundle; ``encode`` is thread-safe (ORT sessions allow concurrent ``run``)."""

    def __init__(self, bundle_dir: Path, threads: int = 1, on: list[str] | None = None) -> None:
        """``on``: the execution providers to ask for (default: ``providers()``, CUDA when present)."""
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(bundle_dir / TEXT_ENCODER), sess_options=opts, providers=on or providers()
        )
        self.tokenizer = Tokenizer.from_file(str(bundle_dir / TOKENIZER))
        self.latency_ms = self._probe()

    def _probe(self, runs: int = 5) -> float:
        """Milliseconds for one short query, the least of ``runs`` (the work's own cost, not that of whatever
        else a busy machine was running); also warms the session before traffic arrives."""
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            self.encode(["a short probe query about a video"])
            times.append((time.perf_counter() - t0) * 1000)
        return min(times)

    def encode(self, texts: list[str]) -> np.ndarray:
        """(B, E) float32 unit-norm embeddings of ``texts``."""
        enc = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        out = self.session.run([TEXT_ENCODER_OUTPUT], dict(zip(TEXT_ENCODER_INPUTS, (ids, mask), strict=True)))[0]
        return np.ascontiguousarray(out, dtype=np.float32)
