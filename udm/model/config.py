"""Training configuration: defaults that finish on 2 CPU cores in a few minutes.

`Config.from_sources` merges the defaults, a TOML file and the command-line flags, and
validates every value's type and range, naming the flag (`--steps`) or the file's key
(`steps in run.toml`). `Config.preflight` checks what needs the outside world (the data's
shape, the device, the output folder, the memory a run would need) before any work starts.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from udm.model import limits

SCHEDULES = ("linear", "cosine", "scaled-linear", "learned")  # learned: continuous-time VDM
TARGETS = ("x0", "eps", "score", "v")
WEIGHTINGS = ("simple", "elbo")
VARIANCES = ("small", "large", "learned")  # sigma_q^2, beta_t, iDDPM's learned interpolation
DTYPES = ("float32", "float64")
# Settings that define the model: a checkpoint is only resumed/loaded with the same ones.
MODEL_KEYS = (
    "data",
    "data_sha256",
    "schedule",
    "T",
    "target",
    "weighting",
    "variance",
    "width",
    "conditional",
    "dtype",
)

# Inclusive integer ranges of every integer setting (the flags' click types come from here).
INT_RANGES = {
    "steps": (1, limits.MAX_STEPS),
    "batch_size": (1, limits.MAX_BATCH),
    "T": (1, limits.MAX_T),
    "width": (2, limits.MAX_WIDTH),
    "n_train": (1, limits.MAX_N),
    "seed": (0, limits.MAX_SEED),
    "log_every": (1, limits.MAX_STEPS),
}
# Float ranges: (low, high, low_open, high_open); NaN and inf are always refused.
FLOAT_RANGES = {
    "lr": (0.0, 1.0, True, False),
    "ema_decay": (0.0, 1.0, False, True),
    "p_uncond": (0.0, 1.0, False, True),
}
STR_CHOICES = {
    "schedule": SCHEDULES,
    "target": TARGETS,
    "weighting": WEIGHTINGS,
    "variance": VARIANCES,
    "dtype": DTYPES,
}
BOOL_KEYS = ("conditional", "plot")

# Built-in data: (shape of one sample, number of classes; 0: no labels).
BUILTIN_DATA = {
    "gaussian": ((1,), 0),
    "mixture": ((2,), 3),
    "moons": ((2,), 2),
    "digits": ((1, 8, 8), 10),
}


@dataclass
class Config:
    data: str = "gaussian"  # a built-in name, or a user's file/folder (stored as absolute path)
    data_sha256: str | None = None  # of a user's data, set by `udm train`; checked on load
    steps: int = 2000
    batch_size: int = 256
    lr: float = 2e-3
    T: int = 1000
    schedule: str = "linear"
    target: str = "eps"
    weighting: str = "simple"
    variance: str = "small"  # reverse variance: sigma_q^2, beta_t, or learned (iDDPM)
    width: int | None = None  # network width; None picks the default for the data
    conditional: bool = False  # class-conditional (labels dropped with p_uncond for CFG)
    p_uncond: float = 0.1
    ema_decay: float = 0.995
    n_train: int = 20_000
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    out: str = "runs/default"
    log_every: int = 50
    plot: bool = True
    extras: dict = field(default_factory=dict)

    def name(self, key: str) -> str:
        """How the user wrote setting `key`: its flag, or its key in the TOML file."""
        source = getattr(self, "_sources", {}).get(key)
        if source is not None:
            return f"{key} in {source}"
        return flag_name(key)

    def validate(self) -> Config:
        """Type and range of every value; ValueError naming the setting and its valid range."""
        for key in INT_RANGES:
            value = getattr(self, key)
            if key == "width" and value is None:
                continue
            lo, hi = INT_RANGES[key]
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(
                    f"{self.name(key)} must be an integer in {lo}..{hi}, got {value!r}"
                )
            if not lo <= value <= hi:
                extra = ""
                if key == "T" and value > hi:  # the schedule's coefficients alone need this
                    need = value * limits.MODEL_SCHEDULE_BYTES_PER_T
                    extra = f" (it would need about {limits.human(need)}, {need} bytes)"
                raise ValueError(f"{self.name(key)} must lie in {lo}..{hi}, got {value}{extra}")
        if self.width is not None and self.width % 2:
            raise ValueError(
                f"{self.name('width')} must be even (2..{limits.MAX_WIDTH}), got {self.width}"
            )
        for key, (lo, hi, lo_open, hi_open) in FLOAT_RANGES.items():
            value = getattr(self, key)
            span = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{self.name(key)} must be a number in {span}, got {value!r}")
            ok = math.isfinite(value) and (lo < value if lo_open else lo <= value)
            ok = ok and (value < hi if hi_open else value <= hi)
            if not ok:
                raise ValueError(f"{self.name(key)} must lie in {span}, got {value!r}")
        for key, choices in STR_CHOICES.items():
            value = getattr(self, key)
            if value not in choices:
                raise ValueError(
                    f"{self.name(key)} must be one of {', '.join(choices)}, got {value!r}"
                )
        if self.schedule == "learned" and self.variance != "small":
            raise ValueError(
                f"{self.name('variance')} {self.variance} needs a discrete schedule (linear, "
                "cosine, scaled-linear); the continuous-time VDM (--schedule learned) has no "
                "per-step reverse variance"
            )
        for key in ("data", "device", "out"):
            value = getattr(self, key)
            if not isinstance(value, str) or not value:
                raise ValueError(f"{self.name(key)} must be a non-empty string, got {value!r}")
        for key in BOOL_KEYS:
            if not isinstance(getattr(self, key), bool):
                raise ValueError(
                    f"{self.name(key)} must be true or false, got {getattr(self, key)!r}"
                )
        if not isinstance(self.extras, dict):
            raise ValueError(f"{self.name('extras')} must be a table, got {self.extras!r}")
        if not (self.device == "cpu" or self.device.startswith(("cuda", "mps"))):
            raise ValueError(
                f"{self.name('device')} must be cpu, cuda, cuda:N or mps, got {self.device!r}"
            )
        return self

    def preflight(self, resume: bool = False) -> None:
        """What a run needs from the outside world, checked before any work: the data's shape
        and labels, the device, the output folder, and the memory the run would need."""
        info = describe_data(self.data, self.name("data"))
        if self.conditional and not info.num_classes:
            raise ValueError(
                f"{flag_name('conditional')} needs data with class labels (mixture, moons, "
                f"digits); {self.data!r} has none"
            )
        if len(info.shape) == 3 and self.width is not None and self.width % 8:
            raise ValueError(
                f"{self.name('width')} must be a multiple of 8 (8..{limits.MAX_WIDTH}) for "
                f"image data (the U-Net's group norm), got {self.width}"
            )
        check_device(self.device, self.name("device"))
        need = limits.train_bytes(
            T=None if self.schedule == "learned" else self.T,
            batch=self.batch_size,
            n_train=info.n if info.n is not None else self.n_train,
            shape=info.shape,
            width=self.width,
            itemsize=8 if self.dtype == "float64" else 4,
            plot=self.plot,
        )
        problem = limits.memory_problem(need)
        if problem:
            raise ValueError(
                f"this run (T = {self.T}, batch size {self.batch_size}, data {info.shape}) "
                f"is too large: {problem}; lower --T or --batch-size"
            )
        if self.schedule != "learned":
            check_schedule(self.schedule, self.T, self.dtype, self.name("T"))
        check_writable_folder(self.out, self.name("out"))
        if resume and not (Path(self.out) / "model.pt").is_file():
            raise ValueError(
                f"--resume: there is no checkpoint {Path(self.out) / 'model.pt'} to continue"
            )

    def model_settings(self) -> dict:
        return {k: getattr(self, k) for k in MODEL_KEYS}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_sources(cls, file: str | Path | None = None, **overrides) -> Config:
        """Defaults, then a TOML file (`[train]` table or top level), then flags given."""
        values: dict = {}
        sources: dict = {}
        if file is not None:
            try:
                with open(file, "rb") as fh:
                    raw = tomllib.load(fh)
            except tomllib.TOMLDecodeError as err:
                raise ValueError(f"--config {file} is not valid TOML: {err}") from None
            except (OSError, UnicodeDecodeError) as err:
                raise ValueError(f"--config {file} cannot be read: {err}") from None
            table = raw.get("train", raw)
            if not isinstance(table, dict):
                raise ValueError(
                    f"--config {file}: train must be a table of settings, got {table!r}"
                )
            values.update(table)
            sources.update(dict.fromkeys(table, str(file)))
        given = {k: v for k, v in overrides.items() if v is not None}
        values.update(given)
        for k in given:
            sources.pop(k, None)
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            where = f" in {file}" if file is not None else ""
            raise ValueError(
                f"unknown config keys{where}: {', '.join(unknown)} (known: {', '.join(known)})"
            )
        config = cls(**values)
        config._sources = sources
        return config.validate()


def flag_name(key: str) -> str:
    """The command-line flag of setting `key` (settings without a flag: the key itself)."""
    if key in ("p_uncond", "n_train", "log_every", "extras"):
        return key
    if key == "plot":
        return "--no-plot"
    return "--T" if key == "T" else "--" + key.replace("_", "-")


def defaults() -> dict:
    """Config's default values (what the help of `udm train` shows)."""
    return {f.name: getattr(Config(), f.name) for f in dataclasses.fields(Config)}


class DataInfo(NamedTuple):
    shape: tuple[int, ...]  # one sample
    num_classes: int  # 0: no labels
    n: int | None  # samples in a user's file (None: drawn, n_train)


def describe_data(name: str, label: str = "--data") -> DataInfo:
    """Shape and labels of a dataset, without loading it (a .npy file's header only)."""
    if name in BUILTIN_DATA:
        shape, classes = BUILTIN_DATA[name]
        return DataInfo(shape, classes, None)
    path = Path(name)
    if not path.exists():
        raise ValueError(
            f"{label}: unknown dataset {name!r}: use one of {', '.join(BUILTIN_DATA)} "
            "or a path to a .npy file / image folder"
        )
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        if not files:
            raise ValueError(f"{label}: data folder {path} holds no .png/.jpg images")
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(files[0]) as image:
                width, height = image.size
        except (OSError, UnidentifiedImageError) as err:
            raise ValueError(f"{label}: {files[0]} is not a readable image: {err}") from None
        if width % 2 or height % 2:
            raise ValueError(
                f"{label}: images in {path} must have even sides (the U-Net halves them), "
                f"got {width}x{height}"
            )
        return DataInfo((1, height, width), 0, len(files))
    if path.suffix != ".npy":
        raise ValueError(f"{label}: data file {path} must be a .npy array or a folder of images")
    import numpy as np

    try:
        x = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"{label}: {path} is not a readable .npy array: {err}") from None
    if x.dtype.kind not in "iuf" or x.ndim < 2:
        raise ValueError(
            f"{label}: {path} must hold a numeric array of shape [N, ...] (N >= 1), "
            f"got {x.dtype} {x.shape}"
        )
    if x.size == 0:
        raise ValueError(f"{label}: {path} holds no samples (shape {x.shape}); need N >= 1")
    if len(x.shape) == 4 and (x.shape[2] % 2 or x.shape[3] % 2):
        raise ValueError(
            f"{label}: images in {path} must have even sides (the U-Net halves them), "
            f"got shape {x.shape}"
        )
    return DataInfo(tuple(int(s) for s in x.shape[1:]), 0, int(x.shape[0]))


def check_schedule(name: str, T: int, dtype: str, label: str = "--T") -> None:
    """The schedule's alpha_bar_t stays > 0 (so SNR and log SNR are finite) for t = 1..T in
    `dtype`: a linear schedule with a large T underflows (float32: T = 20000 does)."""
    import torch

    from udm.torch_impl import vdm

    schedule = vdm.make_schedule(name, T, dtype=getattr(torch, dtype))
    bad = torch.nonzero(~(schedule.alpha_bar_t > 0) | ~torch.isfinite(schedule.log_snr))
    if len(bad):
        t = int(bad[0, 0]) + 1
        hint = "--dtype float64 or " if dtype != "float64" else ""
        raise ValueError(
            f"{label} {T} with the {name} schedule: alpha_bar_t underflows to 0 in {dtype} "
            f"from t = {t} (SNR 0, log SNR -inf); use a smaller {label}, {hint}"
            "the cosine schedule"
        )


def available_devices() -> list[str]:
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


def check_device(name: str, label: str = "--device") -> None:
    """Refuse a device this machine does not have, naming the ones it has."""
    import torch

    here = ", ".join(available_devices())
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"{label} must be cpu, cuda, cuda:N or mps, got {name!r}") from None
    if device.type == "cpu" and device.index in (None, 0):
        return
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{label} {name}: CUDA is not available here (valid here: {here})")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"{label} {name}: no such GPU (valid here: {here})")
        return
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(
                f"{label} mps: this torch build or machine has no MPS device (valid here: {here})"
            )
        return
    raise ValueError(f"{label} must be cpu, cuda, cuda:N or mps, got {name!r}")


def check_writable_folder(folder: str | Path, label: str = "--out") -> None:
    """`folder` is, or can be created as, a folder we can write in; nothing is created."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{label} {folder} is a file; give a folder (it need not exist yet)")
    parent = folder
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{label} {folder}: {parent} is a file, so the folder cannot be created")
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as err:
        raise ValueError(
            f"{label} {folder}: {parent} is not writable ({err.strerror or err})"
        ) from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{label} {folder}: no permission to write in {parent}")
