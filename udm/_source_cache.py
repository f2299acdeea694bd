"""A cache of what the static index (`udm.registry.index`) reads from each source file.

Parsing ~150 files with `ast` takes most of `udm eq N`'s time; their decorators change only
when a file does. Each file's scan result is stored under the SHA-1 of its bytes (an edit
within the same second, or a checkout that keeps mtimes, cannot serve a stale entry), as JSON
in the user's cache folder: $UDM_CACHE_DIR, else $XDG_CACHE_HOME/udm, else ~/.cache/udm. An
unreadable or unwritable folder only costs the speed-up.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

VERSION = 1  # bump when the stored scan format changes


def folder() -> Path:
    if os.environ.get("UDM_CACHE_DIR"):
        return Path(os.environ["UDM_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "udm"


class SourceCache:
    """Scan results per (kind, file content); `save()` keeps only the entries used this run."""

    def __init__(self, root: Path):
        tag = hashlib.sha1(str(root).encode()).hexdigest()[:16]
        self.path = folder() / f"index-v{VERSION}-{tag}.json"
        try:
            self._old = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self._old = {}
        self._new: dict[str, list] = {}
        self.scanned = 0  # files parsed this run (cache misses)

    def get(self, kind: str, file: Path, scan: Callable[[str], list]) -> list:
        """scan(source text) of `file`, from the cache when its content is unchanged."""
        data = file.read_bytes()
        key = f"{kind}:{hashlib.sha1(data).hexdigest()}"
        if key not in self._old:
            self._old[key] = scan(data.decode("utf-8"))
            self.scanned += 1
        self._new[key] = self._old[key]
        return self._new[key]

    def save(self) -> None:
        if self.scanned == 0 and len(self._new) == len(self._old):
            return  # nothing new, nothing to drop
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
        except OSError:
            return
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(self._new, out)
            os.replace(tmp, self.path)  # atomic: a concurrent reader sees old or new, never half
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
