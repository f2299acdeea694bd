"""Argument conversion for the reference layer: float64 arrays, domains checked, names in errors."""

from __future__ import annotations

import numpy as np

from udm import checks

DOMAINS = checks.DOMAINS


def as_float64(name: str, value, domain: str = "real") -> np.ndarray:
    """`value` as a float64 array after checking it is numeric and inside `domain`."""
    if isinstance(value, (str, bytes, bool)) or value is None:
        raise TypeError(f"{name} must be a real number or array, got {type(value).__name__}")
    if hasattr(value, "detach"):  # a torch tensor: refuse silently leaving the device
        raise TypeError(f"{name}: the reference layer takes NumPy arrays; use torch_impl")
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be real-valued, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    DOMAINS[domain](name, arr)
    return arr


def check_broadcast(**arrays: np.ndarray) -> tuple[int, ...]:
    """Raise a ValueError naming the arguments whose shapes do not broadcast."""
    return checks.broadcastable({k: v.shape for k, v in arrays.items()})
