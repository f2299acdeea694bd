"""Size bounds of the command line: refuse, before allocating, work the machine cannot hold.

Every count a user types has a documented upper bound (`MAX_*`), and every size that
multiplies into memory has an estimate (`*_bytes`, from the sizes alone, nothing allocated).
A run is refused when its estimate, plus what torch itself takes, exceeds `MEMORY_FRACTION`
of the machine's physical memory, with the number of bytes it would need.

Calibration (peak RSS on CPU, torch's own ~230 MB subtracted): `udm elbo` at T = 1000,
batch 100 measured 0.28 GB for the 1-D Gaussian MLP (estimate 0.42 GB) and 9.5 GB for the
digits U-Net (estimate 10.1 GB); batch 20 on digits 2.0 GB (estimate 2.0 GB).
`udm schedule`: 440 bytes per t printed, 690 as JSON (estimate 1000).

No torch import here: `udm schedule` and the validators must stay fast.
"""

from __future__ import annotations

import math
import os

MAX_T = 1_000_000  # diffusion steps (udm schedule --T, udm train --T); DDPM uses 1000
MAX_BENCH_T = 100_000  # udm bench --T (each T is checked against 50-digit mpmath)
MAX_STEPS = 100_000_000  # optimizer steps
MAX_BATCH = 1_000_000  # --batch-size, udm elbo --batch
MAX_N = 10_000_000  # udm sample --n, udm elbo --n, n_train
MAX_WIDTH = 4096  # network width
MAX_SEED = 2**63 - 2  # seed + 1 must fit torch's int64 seed
MAX_GUIDANCE = 100.0  # classifier-free guidance gamma
MEMORY_FRACTION = 0.8  # refuse an estimate above this share of physical memory
TORCH_BYTES = 300 * 10**6  # the interpreter, torch and the data loaders, measured ~230 MB

SCHEDULE_BYTES_PER_T = 1000  # udm schedule, measured: 440 B/t printed, 690 B/t as JSON
MODEL_SCHEDULE_BYTES_PER_T = 400  # a model's schedule: 16 float64 coefficients + a cast copy


def physical_memory() -> int | None:
    """Total physical memory in bytes (psutil if installed, else sysconf); None if unknown."""
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except ImportError:
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def human(nbytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(nbytes) < 1000 or unit == "PB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    raise AssertionError  # unreachable


def memory_problem(need: int) -> str | None:
    """None if `need` bytes fit the rule, else the sentence saying they do not."""
    total = physical_memory()
    need += TORCH_BYTES
    if total is None or need <= MEMORY_FRACTION * total:
        return None
    return (
        f"it would need about {human(need)} ({need} bytes) of memory, more than "
        f"{MEMORY_FRACTION:.0%} of this machine's {human(total)}"
    )


def default_width(shape: tuple[int, ...]) -> int:
    """The network width `networks.for_data` picks when --width is not given."""
    return 32 if len(shape) == 3 else 128


def per_sample_elements(shape: tuple[int, ...], width: int | None, grad: bool = False) -> int:
    """Elements alive at once per sample in one network pass (inputs, noise, activations);
    `grad`: kept for the backward pass as well."""
    dims = math.prod(shape)
    width = width or default_width(shape)
    if len(shape) == 3:  # U-Net: feature maps of `width` channels at full resolution
        maps = width * shape[1] * shape[2]
        return 10 * dims + (40 if grad else 12) * maps
    return 10 * dims + (30 if grad else 8) * width  # residual MLP


def network_bytes(shape: tuple[int, ...], width: int | None) -> int:
    """Parameters of the network, times 4 (weights, EMA copy, Adam's two moments), float64."""
    dims = math.prod(shape)
    width = width or default_width(shape)
    if len(shape) == 3:
        params = 40 * width * width * 9 + 20 * width * width
    else:
        params = 8 * width * width + 2 * dims * width + 4 * width * width
    return 4 * 8 * params


def elbo_bytes(T: int, batch: int, shape, width, itemsize: int) -> int:
    """`udm elbo`: the full-T bound is one network pass on T * batch inputs."""
    return T * batch * per_sample_elements(shape, width) * itemsize + network_bytes(shape, width)


def sample_bytes(n: int, shape, width, itemsize: int) -> int:
    """`udm sample`: n samples through the network at a time, plus the float64 output."""
    return n * (per_sample_elements(shape, width) * itemsize + 8 * math.prod(shape)) + (
        network_bytes(shape, width)
    )


def train_bytes(
    *, T: int | None, batch: int, n_train: int, shape, width, itemsize: int, plot: bool
) -> int:
    """`udm train`: data, network + optimizer, one batch with gradients, the schedule, and
    (with plots) the per-t ELBO terms of 64 held-out samples (T * 64 inputs at once)."""
    need = n_train * math.prod(shape) * 8 + network_bytes(shape, width)
    need += batch * per_sample_elements(shape, width, grad=True) * itemsize
    if T is not None:
        need += T * MODEL_SCHEDULE_BYTES_PER_T
        if plot:
            need += elbo_bytes(T, 64, shape, width, itemsize)
    return need
