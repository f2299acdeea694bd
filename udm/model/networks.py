"""Denoiser networks sized for the built-in data: an MLP for vectors, a small U-Net for 8x8.

Both take (x_t [B, ...], t [B] in [0, 1], y [B] class or None) and return a tensor of x_t's
shape; what the output means (x_0, eps, score or v) is the model's `target`. Class
conditioning reserves index `num_classes` as the "no label" token that classifier-free
guidance drops labels to.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class TimeEmbedding(nn.Module):
    """Sinusoidal features of t in [0, 1] (scaled by 1000 as DDPM), then an MLP."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device) / half)
        angles = 1000.0 * t[:, None].to(freqs.dtype) * freqs[None]
        return self.mlp(
            torch.cat([angles.sin(), angles.cos()], dim=-1).to(self.mlp[0].weight.dtype)
        )


class _Conditioning(nn.Module):
    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.time = TimeEmbedding(dim)
        self.num_classes = num_classes
        self.label = nn.Embedding(num_classes + 1, dim) if num_classes else None

    def forward(self, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        h = self.time(t)
        if self.label is not None:
            if y is None:  # unconditional: the reserved "no label" token
                y = torch.full((t.shape[0],), self.num_classes, device=t.device, dtype=torch.long)
            h = h + self.label(y)
        return h


class MLPDenoiser(nn.Module):
    """Residual MLP on flattened data, conditioned on t (and y) by addition."""

    def __init__(
        self,
        shape: tuple[int, ...],
        hidden: int = 128,
        depth: int = 3,
        num_classes: int = 0,
        outputs: int = 1,
    ):
        super().__init__()
        self.shape, self.outputs = tuple(shape), outputs
        dims = math.prod(self.shape)
        self.cond = _Conditioning(hidden, num_classes)
        self.inp = nn.Linear(dims, hidden)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden)
            )
            for _ in range(depth)
        )
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, outputs * dims))

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None):
        c = self.cond(t, y)
        h = self.inp(x_t.flatten(1)) + c
        for block in self.blocks:
            h = h + block(h + c)
        out = self.out(h)
        if self.outputs == 1:
            return out.view_as(x_t)
        return out.view(x_t.shape[0], self.outputs * self.shape[0], *self.shape[1:])


class _ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(8, cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb, cout)
        self.norm2, self.conv2 = nn.GroupNorm(8, cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, c):
        h = self.conv1(nn.functional.silu(self.norm1(x)))
        h = h + self.emb(c)[:, :, None, None]
        h = self.conv2(nn.functional.silu(self.norm2(h)))
        return h + self.skip(x)


class UNet(nn.Module):
    """A small U-Net for [B, C, H, W] images with even H, W (8x8 digits: 2 levels)."""

    def __init__(
        self, shape: tuple[int, ...], width: int = 32, num_classes: int = 0, outputs: int = 1
    ):
        super().__init__()
        channels, height, w = shape
        if height % 2 or w % 2:
            raise ValueError(f"UNet needs even image sides, got {shape}")
        self.shape, self.outputs = tuple(shape), outputs
        emb = 4 * width
        self.cond = _Conditioning(emb, num_classes)
        self.inp = nn.Conv2d(channels, width, 3, padding=1)
        self.down1 = _ResBlock(width, width, emb)
        self.pool = nn.AvgPool2d(2)
        self.down2 = _ResBlock(width, 2 * width, emb)
        self.mid = _ResBlock(2 * width, 2 * width, emb)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.up1 = _ResBlock(3 * width, width, emb)
        self.out = nn.Sequential(
            nn.GroupNorm(8, width), nn.SiLU(), nn.Conv2d(width, outputs * channels, 3, padding=1)
        )

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None):
        c = self.cond(t, y)
        h1 = self.down1(self.inp(x_t), c)
        h2 = self.mid(self.down2(self.pool(h1), c), c)
        return self.out(self.up1(torch.cat([self.up(h2), h1], dim=1), c))


def for_data(
    shape: tuple[int, ...], num_classes: int = 0, width: int | None = None, outputs: int = 1
) -> nn.Module:
    """The default network for data of this shape: U-Net for images, MLP otherwise.
    outputs = 2: twice the channels (first dimension), the second half a learned variance."""
    if len(shape) == 3:
        return UNet(shape, width=width or 32, num_classes=num_classes, outputs=outputs)
    return MLPDenoiser(shape, hidden=width or 128, num_classes=num_classes, outputs=outputs)
