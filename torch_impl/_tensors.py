"""Tensor helpers shared by the torch layer: argument checks and the one broadcast helper."""

from __future__ import annotations

import torch

from udm import checks

DOMAINS = checks.DOMAINS


def tensor_arg(name: str, value, domain: str = "real", *, like: torch.Tensor | None = None):
    """`value` as a floating tensor (Python numbers follow `like`'s dtype and device), checked.

    Checks sync with the device; they run at entry points only, never inside loops over t.
    """
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got {value.dtype}")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        value = torch.tensor(
            float(value),
            dtype=like.dtype if like is not None else torch.get_default_dtype(),
            device=like.device if like is not None else None,
        )
    else:
        raise TypeError(f"{name} must be a tensor or a Python number, got {type(value).__name__}")
    DOMAINS[domain](name, value)
    return value


def check_broadcast(**tensors: torch.Tensor) -> tuple[int, ...]:
    """Raise a ValueError naming the arguments whose shapes do not broadcast."""
    return checks.broadcastable({k: tuple(v.shape) for k, v in tensors.items()})


def append_dims(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape a per-sample quantity [B] (or scalar) to broadcast against x [B, ...]."""
    if v.ndim > x.ndim:
        raise ValueError(f"cannot broadcast shape {tuple(v.shape)} against data {tuple(x.shape)}")
    return v.reshape(*v.shape, *([1] * (x.ndim - v.ndim)))
