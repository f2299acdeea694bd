"""One progress-bar policy for train / elbo / sample."""

from __future__ import annotations

from collections.abc import Iterable

from tqdm import tqdm


def bar(iterable: Iterable | None = None, *, total: int | None = None, enabled: bool, unit: str):
    """A tqdm bar on stderr that shows only on a terminal (no carriage-return spam in a log
    file) and only once the work has taken 2 s (quick commands stay quiet)."""
    return tqdm(
        iterable,
        total=total,
        disable=None if enabled else True,
        delay=2.0,
        unit=unit,
        leave=False,
        dynamic_ncols=True,
    )
