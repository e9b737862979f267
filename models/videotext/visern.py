"""``visern``: a text-video model after ViSERN (Feng et al., IJCAI 2020, arXiv 2006.08889).

Only the abstract could be read (shared/METHODS.md §3); everything but the idea is ours:

1. Regions [ours]: no region detector is available offline, so a frame's regions are the cells of
   its CNN feature map (the frame CNN's 4 x 4 grid, 16 regions), each with a learned position
   embedding. Precomputed region features (``.npy`` frames x regions x dim) enter at the same point.
2. A fully connected semantic graph over the regions of a frame [P], reasoned over with GCN layers
   that follow a random-walk rule: the row-stochastic transition ``P = softmax(theta(V) phi(V)^T)``
   [D, METHODS §3], propagation ``V* = V + BN(W (P g(V)))`` with BN initialised to zero, so each
   layer starts as the identity (the residual form of VSRN's Rs_GCN [Cb]). Two layers (ours).
3. Region -> frame aggregation [P, form ours]: attention pooling with one learned query, which can
   weight redundant regions down.
4. Frame -> video [P, form ours]: the baseline's temporal transformer and masked mean pooling.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from models.dual_encoder import DualEncoder
from models.encoders.blocks import SequenceEncoder, l2norm
from models.encoders.vision import MEAN, STD
from models.registry import MODELS, VISION_ENCODERS

GRID = 4  # regions per side of a frame's feature map


class RandomWalkGCN(nn.Module):
    """One reasoning step over a fully connected region graph: (N, R, D) -> (N, R, D)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.theta = nn.Linear(dim, dim // 2)
        self.phi = nn.Linear(dim, dim // 2)
        self.g = nn.Linear(dim, dim)
        self.w = nn.Linear(dim, dim)
        self.bn = nn.BatchNorm1d(dim)
        nn.init.zeros_(self.bn.weight)  # identity at init (VSRN's zero-initialised BN)

    def transition(self, v: torch.Tensor) -> torch.Tensor:
        """(N, R, D) -> (N, R, R) row-stochastic random-walk transition matrix."""
        affinity = self.theta(v) @ self.phi(v).transpose(1, 2)  # (N, R, R)
        return (affinity / self.theta.out_features**0.5).softmax(-1)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        n, r, d = v.shape
        msg = self.w(self.transition(v) @ self.g(v))  # (N, R, D)
        return v + self.bn(msg.reshape(n * r, d)).reshape(n, r, d)


class RegionReasoner(nn.Module):
    """Region features (N, R, C) -> frame features (N, D): embed, reason (GCN), attention-pool."""

    def __init__(self, in_dim: int, width: int, regions: int, gcn_layers: int) -> None:
        super().__init__()
        self.embed = nn.Linear(in_dim, width)
        self.pos = nn.Parameter(torch.randn(regions, width) * 0.02)  # where a region is (ours)
        self.gcn = nn.ModuleList(RandomWalkGCN(width) for _ in range(gcn_layers))
        self.query = nn.Linear(width, 1)  # region -> frame attention pooling (ours)

    def forward(self, regions: torch.Tensor) -> torch.Tensor:
        v = self.embed(regions) + self.pos[: regions.shape[1]]  # (N, R, D)
        for layer in self.gcn:
            v = layer(v)
        w = self.query(v).softmax(1)  # (N, R, 1)
        return (w * v).sum(1)


@VISION_ENCODERS.register("visern_regions")
class ViSERNVideo(nn.Module):
    """frames (B, T, S, S, 3) uint8 -> CNN grid regions -> graph reasoning -> frames -> video."""

    def __init__(
        self,
        embed_dim: int,
        channels: list[int],
        width: int,
        layers: int,
        heads: int,
        max_frames: int,
        gcn_layers: int = 2,
        **_: Any,
    ) -> None:
        super().__init__()
        convs: list[nn.Module] = []
        c_in = 3
        for c in channels:
            convs += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            c_in = c
        self.conv = nn.Sequential(*convs, nn.AdaptiveAvgPool2d(GRID))
        self.region_dim = c_in
        self.reason = RegionReasoner(c_in, width, GRID * GRID, gcn_layers)
        self.temporal = SequenceEncoder(width, layers, heads, max_frames)
        self.proj = nn.Linear(width, embed_dim)

    def regions(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) float in [0, 1] -> (N, R, C) grid-cell region features."""
        return self.conv((x - MEAN) / STD).flatten(2).transpose(1, 2)  # (N, C, 4, 4) -> (N, 16, C)

    def forward(self, frames: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (video (B, E), clips (B, T, E)), both unit norm; padding frames never reach BatchNorm."""
        b, t = frames.shape[:2]
        valid = mask.reshape(-1) > 0
        x = frames.reshape(b * t, *frames.shape[2:])[valid].permute(0, 3, 1, 2).float() / 255.0  # (V, 3, S, S)
        return self.encode_regions(self.regions(x), valid, b, t, mask)

    def encode_regions(
        self, regions: torch.Tensor, valid: torch.Tensor, b: int, t: int, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Region features of the valid frames (V, R, C) -> (video (B, E), clips (B, T, E))."""
        feats = regions.new_zeros(b * t, self.proj.in_features)
        feats[valid] = self.reason(regions)
        pooled, steps = self.temporal(feats.reshape(b, t, -1), mask)  # (B, D), (B, T, D)
        return l2norm(self.proj(pooled)), l2norm(self.proj(steps))

    def encode_features(self, regions: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Precomputed region features (B, T, R, C) float + (B, T) mask -> (video, clips) as ``forward``."""
        b, t = regions.shape[:2]
        valid = mask.reshape(-1) > 0
        return self.encode_regions(regions.reshape(b * t, *regions.shape[2:])[valid], valid, b, t, mask)


@MODELS.register("visern")
class ViSERN(DualEncoder):
    """The dual encoder with the ViSERN video tower; text tower and loss come from the registries."""

    def __init__(self, cfg: dict[str, Any], vocab_size: int) -> None:
        super().__init__({**cfg, "vision_encoder": cfg.get("vision_encoder", "visern_regions")}, vocab_size)
