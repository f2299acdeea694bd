"""Data that needs no download: analytic densities, two-moons, sklearn's 8x8 digits, user files.

Every dataset is a `Dataset`: float32 samples in [-1, 1]-ish scale, optional labels, and
for analytic data the exact log-density (so `udm elbo` can print the true NLL beside the bound).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from udm.torch_impl.score import gaussian_mixture_log_prob

BUILTIN = ("gaussian", "mixture", "moons", "digits")

# The 2-D mixture: three equally weighted isotropic Gaussians on a circle of radius 2.
MIXTURE_MEANS = np.array([[2.0 * math.cos(a), 2.0 * math.sin(a)] for a in (0.5, 2.6, 4.7)])
MIXTURE_STD = 0.35


def gaussian_mixture(name: str):
    """(weights [K], means [K, D], variances [K, D]) as float64 numpy arrays of a built-in
    dataset that is a Gaussian mixture (gaussian: N(0, 1), K = 1; mixture), else None."""
    if name == "gaussian":
        return np.ones(1), np.zeros((1, 1)), np.ones((1, 1))
    if name == "mixture":
        k = len(MIXTURE_MEANS)
        return np.full(k, 1.0 / k), MIXTURE_MEANS.copy(), np.full((k, 2), MIXTURE_STD**2)
    return None


@dataclass(frozen=True)
class Dataset:
    name: str
    x: torch.Tensor  # [N, *shape] float32
    y: torch.Tensor | None = None  # [N] int64 class labels, or None
    num_classes: int = 0
    levels: int | None = None  # discrete data with this many grey levels in [-1, 1]
    log_prob: Callable[[np.ndarray], np.ndarray] | None = None  # exact, per sample, nats

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def dims(self) -> int:
        return int(np.prod(self.shape))


def _gaussian(n: int, rng: np.random.Generator) -> Dataset:
    x = rng.standard_normal((n, 1))

    def log_prob(v: np.ndarray) -> np.ndarray:
        return (-0.5 * v**2 - 0.5 * math.log(2 * math.pi)).sum(axis=-1)

    return Dataset("gaussian", torch.from_numpy(x).float(), log_prob=log_prob)


def mixture_log_prob(v: np.ndarray) -> np.ndarray:
    """Exact log-density of the built-in 2-D mixture [..., 2] -> [...] (float64), by the
    mixture oracle `udm.torch_impl.score.gaussian_mixture_log_prob`."""
    k = len(MIXTURE_MEANS)
    return gaussian_mixture_log_prob(
        x=torch.as_tensor(np.asarray(v), dtype=torch.float64),
        weights=torch.full((k,), 1 / k, dtype=torch.float64),
        means=torch.from_numpy(MIXTURE_MEANS),
        variances=torch.full((k,), MIXTURE_STD**2, dtype=torch.float64),
    ).numpy()


def _mixture(n: int, rng: np.random.Generator) -> Dataset:
    k = rng.integers(0, len(MIXTURE_MEANS), size=n)
    x = MIXTURE_MEANS[k] + MIXTURE_STD * rng.standard_normal((n, 2))
    return Dataset(
        "mixture", torch.from_numpy(x).float(), torch.from_numpy(k), 3, log_prob=mixture_log_prob
    )


def _moons(n: int, rng: np.random.Generator) -> Dataset:
    from sklearn.datasets import make_moons

    x, y = make_moons(n, noise=0.06, random_state=int(rng.integers(2**31)))
    x = (x - np.array([0.5, 0.25])) / np.array([0.87, 0.5])  # roughly zero mean, unit scale
    return Dataset("moons", torch.from_numpy(x).float(), torch.from_numpy(y), 2)


def _digits(n: int | None, rng: np.random.Generator, split: str) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    order = np.random.default_rng(0).permutation(len(bunch.target))  # fixed split
    cut = int(0.85 * len(order))
    idx = order[:cut] if split == "train" else order[cut:]
    if n is not None:
        idx = rng.choice(idx, size=min(n, len(idx)), replace=False)
    # 17 grey levels 0..16 mapped to bin centres in [-1, 1]
    x = bunch.images[idx] / 8.0 - 1.0
    return Dataset(
        "digits",
        torch.from_numpy(x[:, None]).float(),
        torch.from_numpy(bunch.target[idx]),
        10,
        levels=17,
    )


HELD_OUT_FRACTION = 0.1  # of a user's data, held out for `udm elbo` (at least one sample)


def _read_user_data(path: Path) -> tuple[np.ndarray, int | None]:
    """(array [N, ...] in [-1, 1]-ish scale, grey levels or None) of a .npy file / image folder."""
    if path.is_dir():
        from PIL import Image

        files = _image_files(path)
        if not files:
            raise ValueError(f"data folder {path} holds no .png/.jpg images")
        arrays = [np.asarray(Image.open(f).convert("L"), dtype=np.float64) for f in files]
        if len({a.shape for a in arrays}) != 1:
            raise ValueError(f"images in {path} differ in size; resize them to one size first")
        return np.stack(arrays)[:, None] / 127.5 - 1.0, 256
    if path.suffix != ".npy":
        raise ValueError(f"data file {path} must be a .npy array or a folder of images")
    x = np.load(path, allow_pickle=False)
    if x.dtype.kind not in "iuf" or x.ndim < 2:
        raise ValueError(f"{path}: need a numeric array of shape [N, ...], got {x.dtype} {x.shape}")
    return x, None


def _image_files(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))


def _user_file(path: Path, split: str) -> Dataset:
    """A user's data, split once and for all (fixed permutation) into train and held-out."""
    x, levels = _read_user_data(path)
    if len(x) < 2:
        raise ValueError(f"{path}: need at least 2 samples (one is held out), got {len(x)}")
    order = np.random.default_rng(0).permutation(len(x))
    cut = len(x) - max(1, round(HELD_OUT_FRACTION * len(x)))
    idx = order[:cut] if split == "train" else order[cut:]
    name = path.name if path.is_dir() else path.stem
    return Dataset(name, torch.from_numpy(x[np.sort(idx)].astype(np.float32)), levels=levels)


def resolve(name: str) -> str:
    """A built-in name unchanged; a user's file or folder as an absolute path, so that a
    checkpoint finds its data from any working directory."""
    path = Path(name).expanduser()
    return str(path.resolve()) if name not in BUILTIN and path.exists() else name


def fingerprint(name: str) -> str | None:
    """sha256 of a user's data (a folder: of its image files' names and bytes); None for
    built-in data, which is regenerated from its seed."""
    if name in BUILTIN:
        return None
    path = Path(name)
    files = _image_files(path) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def load(name: str, n: int | None = None, *, seed: int = 0, split: str = "train") -> Dataset:
    """A built-in dataset by name (`gaussian`, `mixture`, `moons`, `digits`) or a user's
    `.npy` file / image folder. Analytic sets draw `n` fresh samples (default 10 000);
    `split` picks disjoint train/test draws (different seeds), the digits hold-out set, or
    the held-out tenth of a user's data."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    if name == "digits":
        data = _digits(n, rng, split)
    elif name in BUILTIN:
        data = {"gaussian": _gaussian, "mixture": _mixture, "moons": _moons}[name](n or 10_000, rng)
    elif Path(name).exists():
        data = _user_file(Path(name), split)
    else:
        raise ValueError(
            f"unknown dataset {name!r}: use one of {', '.join(BUILTIN)} "
            "or a path to a .npy file / image folder"
        )
    if not torch.isfinite(data.x).all():
        raise ValueError(f"dataset {name!r} contains NaN or infinite values")
    return data
