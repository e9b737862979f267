"""Frame encoder (small CNN keeping a coarse spatial grid) and video encoder (frames -> temporal transformer).

Images are one-frame videos, so images and videos share the frame encoder and the embedding space.
"""

from __future__ import annotations

import torch
from torch import nn

from models.encoders.blocks import SequenceEncoder, l2norm
from models.registry import VISION_ENCODERS

MEAN, STD = 0.2, 0.3  # demo frames are dark; fixed constants keep export and indexing in step


class FrameCNN(nn.Module):
    """(N, 3, S, S) float in [0, 1] -> (N, width) per-frame features."""

    def __init__(self, channels: list[int], width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            c_in = c
        self.conv = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(4)  # keep a 4x4 grid: where a digit is matters ("moves left")
        self.fc = nn.Linear(c_in * 16, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.conv((x - MEAN) / STD)).flatten(1))


@VISION_ENCODERS.register("cnn_temporal")
class VideoEncoder(nn.Module):
    def __init__(
        self, embed_dim: int, channels: list[int], width: int, layers: int, heads: int, max_frames: int
    ) -> None:
        super().__init__()
        self.frames = FrameCNN(channels, width)
        self.temporal = SequenceEncoder(width, layers, heads, max_frames)
        self.proj = nn.Linear(width, embed_dim)

    def forward(self, frames: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """frames (B, T, S, S, 3) uint8, mask (B, T) -> (video (B, E) unit norm, clips (B, T, E) unit norm)."""
        b, t = frames.shape[:2]
        x = frames.reshape(b * t, *frames.shape[2:])  # (B*T, S, S, 3)
        valid = mask.reshape(-1) > 0  # padding frames never reach the CNN (nor its BatchNorm statistics)
        x = x[valid].permute(0, 3, 1, 2).float() / 255.0  # (V, 3, S, S)
        feats = self.frames.fc.weight.new_zeros(b * t, self.frames.fc.out_features)
        feats[valid] = self.frames(x)
        feats = feats.reshape(b, t, -1)  # (B, T, W)
        pooled, steps = self.temporal(feats, mask)
        return l2norm(self.proj(pooled)), l2norm(self.proj(steps))
