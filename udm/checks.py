"""Argument checks shared by `reference` (NumPy) and `torch_impl` (PyTorch).

Duck-typed: every check works on Python scalars, NumPy arrays and torch tensors alike,
so neither layer imports the other. Checks run where a user enters (public functions,
constructors); they raise `ValueError`/`TypeError` naming the argument and the valid range.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

# Value checks (NaN, ranges) read the data: on a GPU each one waits for the device. Like
# torch.distributions' validate_args they are on by default and can be switched off, globally
# or for a block of code, where the inputs are known to be valid (a sampling loop, a training
# step). Type and shape checks need no data and always run.
_validate = True


def set_validate_args(value: bool) -> None:
    """Switch the value checks of every layer on (default) or off, for the whole process."""
    global _validate
    if not isinstance(value, bool):
        raise TypeError(f"validate_args must be True or False, got {value!r}")
    _validate = value


def validate_args_enabled() -> bool:
    return _validate


@contextlib.contextmanager
def validate_args(value: bool) -> Iterator[None]:
    """`with validate_args(False): ...` runs the block without value checks."""
    previous = _validate
    set_validate_args(value)
    try:
        yield
    finally:
        set_validate_args(previous)


def _any(mask: Any) -> bool:
    return bool(mask.any()) if hasattr(mask, "any") else bool(mask)


def _is_numeric(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return False
    kind = getattr(dtype, "kind", None)  # numpy
    if kind is not None:
        return kind in "iuf"
    return bool(getattr(dtype, "is_floating_point", False)) or str(dtype).startswith(
        ("torch.int", "torch.uint")
    )


def finite(name: str, value: Any) -> Any:
    """Require a real number/array/tensor with no NaN or infinity."""
    if not _is_numeric(value):
        raise TypeError(
            f"{name} must be a real number, array or tensor, got {type(value).__name__}"
        )
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
        return value
    if _validate and not _all_finite(value):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return value


def _all_finite(value: Any) -> bool:
    """One pass over the data: torch tensors by their own isfinite, everything else by NumPy's."""
    if hasattr(value, "isfinite"):  # torch.Tensor (stays on its device until the reduction)
        return bool(value.isfinite().all())
    return bool(np.isfinite(value).all())


def positive(name: str, value: Any) -> Any:
    """Require value > 0 everywhere (variances, step sizes, noise scales)."""
    finite(name, value)
    if _validate and _any(value <= 0):
        raise ValueError(f"{name} must be > 0 everywhere")
    return value


def nonpositive(name: str, value: Any, *, strict: bool = False) -> Any:
    """Require value <= 0 (value < 0 with strict=True): the log of a level in (0, 1]."""
    finite(name, value)
    if _validate and _any(value >= 0 if strict else value > 0):
        raise ValueError(f"{name} must be {'< 0' if strict else '<= 0'} everywhere")
    return value


def in_unit_interval(name: str, value: Any, *, closed_right: bool = True) -> Any:
    """Require 0 < value <= 1 (or 0 < value < 1 with closed_right=False)."""
    finite(name, value)
    if not _validate:
        return value
    upper_bad = value > 1 if closed_right else value >= 1
    if _any(value <= 0) or _any(upper_bad):
        bracket = "]" if closed_right else ")"
        raise ValueError(f"{name} must lie in (0, 1{bracket} everywhere")
    return value


def in_closed_unit_interval(name: str, value: Any) -> Any:
    """Require 0 <= value <= 1 (DDIM's eta, iDDPM's v)."""
    finite(name, value)
    if not _validate:
        return value
    if _any(value < 0) or _any(value > 1):
        raise ValueError(f"{name} must lie in [0, 1] everywhere")
    return value


def broadcastable(shapes: Mapping[str, tuple[int, ...]]) -> tuple[int, ...]:
    """The broadcast shape of named shapes, or a ValueError naming the offenders."""
    result: list[int] = []
    for name, shape in shapes.items():
        shape = tuple(shape)
        padded = [1] * (len(shape) - len(result)) + result
        other = [1] * (len(result) - len(shape)) + list(shape)
        merged = []
        for a, b in zip(padded, other, strict=True):
            if a != b and 1 not in (a, b):
                listing = ", ".join(f"{k}{tuple(v)}" for k, v in shapes.items())
                raise ValueError(f"shapes do not broadcast: {listing} ({name} is the first misfit)")
            merged.append(max(a, b))
        result = merged
    return tuple(result)


def shape_of(value: Any) -> tuple[int, ...]:
    return tuple(getattr(value, "shape", ()))


def same_shape(**values: Any) -> tuple[int, ...]:
    """Require identical shapes (e.g. a prediction and its target): no silent broadcast."""
    shapes = {k: shape_of(v) for k, v in values.items()}
    first = next(iter(shapes.values()))
    if any(s != first for s in shapes.values()):
        listing = ", ".join(f"{k}{s}" for k, s in shapes.items())
        raise ValueError(f"shapes must be equal: {listing}")
    return first


def timestep(name: str, t: Any, T: int) -> Any:
    """Require integer time steps with 1 <= t <= T (the paper's indexing)."""
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be an int >= 1, got {T!r}")
    if isinstance(t, bool) or (
        not isinstance(t, int) and "int" not in str(getattr(t, "dtype", ""))
    ):
        raise TypeError(f"{name} must be an integer time step (1..T), got {type(t).__name__}")
    if _validate and (_any(t < 1) or _any(t > T)):
        raise ValueError(f"{name} must satisfy 1 <= {name} <= T = {T}")
    return t


SCHEDULES = ("linear", "scaled-linear", "cosine")
# The VP SDE's beta(t) = beta_min + t (beta_max - beta_min): Song et al. (2021)'s defaults.
VP_BETA_MIN, VP_BETA_MAX = 0.1, 20.0
# The per-t coefficients every layer's Schedule exposes (element t - 1 belongs to step t).
SCHEDULE_COEFFICIENTS = (
    "beta_t",
    "alpha_t",
    "alpha_bar_t",
    "alpha_bar_prev",
    "var_q",
    "log_var_q",
    "snr",
    "log_snr",
)


def schedule_choice(name: Any, beta_start: Any = None, beta_end: Any = None) -> dict[str, Any]:
    """Check a named schedule's options; return the beta ends that were given.

    One dispatch for both layers' `make_schedule`: a given end is passed on (and range-checked
    by the builder) whatever its value, 0.0 included; only None means "the default". The
    cosine schedule takes no ends.
    """
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; known: {', '.join(SCHEDULES)}")
    ends = {k: v for k, v in (("beta_start", beta_start), ("beta_end", beta_end)) if v is not None}
    if name == "cosine" and ends:
        raise ValueError("the cosine schedule takes no beta_start/beta_end")
    return ends


# Named domains of arguments, shared by the reference (NumPy) and torch layers' converters.
DOMAINS = {
    "real": finite,
    "positive": positive,
    "unit": in_unit_interval,
    "open_unit": lambda name, v: in_unit_interval(name, v, closed_right=False),
    "negative": lambda name, v: nonpositive(name, v, strict=True),
    "nonpositive": nonpositive,
    "closed_unit": in_closed_unit_interval,
}
