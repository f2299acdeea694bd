"""Training configuration: defaults that finish on 2 CPU cores in a few minutes."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

SCHEDULES = ("linear", "cosine", "scaled-linear", "learned")  # learned: continuous-time VDM
TARGETS = ("x0", "eps", "score", "v")
WEIGHTINGS = ("simple", "elbo")
DTYPES = ("float32", "float64")
# Settings that define the model: a checkpoint is only resumed/loaded with the same ones.
MODEL_KEYS = (
    "data",
    "data_sha256",
    "schedule",
    "T",
    "target",
    "weighting",
    "width",
    "conditional",
    "dtype",
)


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

    def validate(self) -> Config:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ValueError(msg)

        need(self.steps >= 1, f"steps must be >= 1, got {self.steps}")
        need(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        need(self.lr > 0, f"lr must be > 0, got {self.lr}")
        need(self.T >= 1, f"T must be >= 1, got {self.T}")
        need(
            self.schedule in SCHEDULES,
            f"schedule must be one of {SCHEDULES}, got {self.schedule!r}",
        )
        need(self.target in TARGETS, f"target must be one of {TARGETS}, got {self.target!r}")
        need(
            self.weighting in WEIGHTINGS,
            f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}",
        )
        need(self.dtype in DTYPES, f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        need(0.0 <= self.p_uncond < 1.0, f"p_uncond must lie in [0, 1), got {self.p_uncond}")
        need(
            self.device == "cpu" or self.device.startswith(("cuda", "mps")),
            f"device must be cpu, cuda[:N] or mps, got {self.device!r}",
        )
        return self

    def model_settings(self) -> dict:
        return {k: getattr(self, k) for k in MODEL_KEYS}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_sources(cls, file: str | Path | None = None, **overrides) -> Config:
        """Defaults, then a TOML file (`[train]` table or top level), then flags given."""
        values: dict = {}
        if file is not None:
            with open(file, "rb") as fh:
                raw = tomllib.load(fh)
            values.update(raw.get("train", raw))
        values.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(unknown)}")
        return cls(**values).validate()
