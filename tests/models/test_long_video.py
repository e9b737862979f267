"""Streaming window encoding against the all-at-once oracle (``encode_windows``) on seeded frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.factory import build_model, load_config
from models.long_video import encode_stream, encode_windows, segment_bounds


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = load_config(
        "baseline_tiny", vision={"channels": [4, 8], "width": 16, "layers": 1, "heads": 2, "max_frames": 8}
    )
    cfg["embed_dim"] = 16
    return build_model(cfg, vocab_size=50).eval()


@pytest.mark.parametrize(
    ("n", "chunk", "per_batch"), [(1, 4, 2), (8, 3, 2), (9, 4, 1), (37, 5, 3), (40, 64, 8), (41, 1, 2)]
)
def test_stream_equals_all_at_once(model: torch.nn.Module, n: int, chunk: int, per_batch: int) -> None:
    frames = np.random.default_rng(n).integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    want_v, want_c = encode_windows(model, frames, span=8)
    chunks = (frames[i : i + chunk] for i in range(0, n, chunk))
    got_v, got_c = encode_stream(model, chunks, span=8, windows_per_batch=per_batch)
    assert got_v.shape == (len(segment_bounds(n, 8)), 16) and got_c.shape == (n, 16)
    np.testing.assert_allclose(got_v, want_v, atol=1e-5)
    np.testing.assert_allclose(got_c, want_c, atol=1e-5)


def test_stream_holds_a_bounded_run_of_frames(model: torch.nn.Module) -> None:
    """The generator is never more than a few windows ahead of the encoder: frames are not all read first."""
    n, chunk, span, per_batch = 400, 4, 8, 2
    frames = np.random.default_rng(0).integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    produced, lag, sizes = [0], [], []
    real = model.encode_video

    def spy(x: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lag.append(produced[0])
        sizes.append(x.shape[0])
        return real(x, m)

    def chunks():  # type: ignore[no-untyped-def]
        for i in range(0, n, chunk):
            produced[0] = i + chunk
            yield frames[i : i + chunk]

    model.encode_video = spy  # type: ignore[method-assign]
    try:
        encode_stream(model, chunks(), span=span, windows_per_batch=per_batch)
        assert max(sizes) <= per_batch  # a forward pass never takes more windows than asked
        assert lag[0] <= span + per_batch * span // 2 + chunk  # encoding began long before the end
        assert len(lag) >= n // (per_batch * span // 2) - 1
        sizes.clear()
        encode_stream(model, [frames], span=span, windows_per_batch=per_batch)  # one huge chunk: still batched
        assert 0 < max(sizes) <= per_batch
    finally:
        del model.encode_video
