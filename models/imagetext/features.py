"""Grid "region" features for images: a frozen, randomly initialised CNN whose spatial grid plays
the role of the BUTD detector's 36 regions in the VSE/SCAN precomp layout.

xmr's own design (the papers use Faster R-CNN regions, which cannot be computed here): the
weights come from a seeded NumPy generator, so the demo's precomputed ``*_ims.npy`` and the
indexer (which embeds an image file through the trained model) compute identical features,
and the extractor travels inside every checkpoint as frozen buffers. Random convolutional
features keep colour, shape and position well enough for a trained head to read them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# Demo images are dimmed photographs with bright digits; fixed constants keep train and index in step.
MEAN, STD = 0.25, 0.3


def default_spec() -> dict[str, Any]:
    """The extractor the demo set uses: 96x96 input, 6x6 = 36 regions (as BUTD's K=36), 192-d each."""
    return {"kind": "random_cnn", "seed": 0, "image_size": 96, "channels": [48, 96, 192], "grid": 6}


class GridFeatures(nn.Module):
    """(B, S, S, 3) uint8 RGB -> (B, grid*grid, C) float32 region features (frozen; no parameters to train)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        self.spec = dict(spec)
        rng = np.random.default_rng(int(spec["seed"]))
        c_in = 3
        for i, c in enumerate(spec["channels"]):
            w = rng.standard_normal((c, c_in, 3, 3)) * np.sqrt(2.0 / (c_in * 9))  # He init: activations keep scale
            self.register_buffer(f"w{i}", torch.tensor(w, dtype=torch.float32))
            c_in = c
        self.n_layers = len(spec["channels"])
        self.dim = c_in

    @torch.no_grad()
    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = (pixels.permute(0, 3, 1, 2).float() / 255.0 - MEAN) / STD  # (B, 3, S, S)
        for i in range(self.n_layers):
            x = F.relu(F.conv2d(x, getattr(self, f"w{i}"), stride=2, padding=1))
            x = x / (x.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt() + 1e-6)  # per-image scale, as a BN would
        g = int(self.spec["grid"])
        x = F.adaptive_avg_pool2d(x, g)  # (B, C, g, g)
        return x.flatten(2).transpose(1, 2).contiguous()  # (B, g*g, C)


def extract(images: np.ndarray, spec: dict[str, Any], batch_size: int = 256) -> np.ndarray:
    """Region features of ``images`` (N, S, S, 3) uint8 -> (N, grid*grid, C) float32, in batches."""
    net = GridFeatures(spec).eval()
    out = [net(torch.from_numpy(images[i : i + batch_size])).numpy() for i in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, int(spec["grid"]) ** 2, net.dim), np.float32)
