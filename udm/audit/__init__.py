"""`udm audit`: check a user's own diffusion code (diffusers schedulers, tables, networks)
against the verified math. Python API: `scheduler(obj)` for a diffusers scheduler object,
`scheduler_source(path)` for a config / folder / array file, `elbo(model, images, ...)` for
an eps-prediction network. Submodules load lazily (the `udm` command must start fast)."""

from __future__ import annotations

import importlib

_SCHEDULE = ("DEFAULT_MAX_ULPS", "AuditInputError", "Report", "scheduler", "scheduler_source")
_LIKELIHOOD = ("elbo", "LoadError")
__all__ = [*_SCHEDULE, *_LIKELIHOOD]


def __getattr__(name: str):
    if name in _SCHEDULE:
        return getattr(importlib.import_module("udm.audit.schedule"), name)
    if name in _LIKELIHOOD:
        return getattr(importlib.import_module("udm.audit.likelihood"), name)
    raise AttributeError(f"module 'udm.audit' has no attribute {name!r}")
