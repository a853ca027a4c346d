"""A content-addressed result cache, one small JSON file per analysis unit.

The key covers the bytes of the unit's own files, closelint's version, the rulebook and the config;
what the analysis saw outside the unit (a parent module, the crate's other files, Cargo.toml
files found by walking up) is stored with the entry and checked again before a hit is used
(closelint.observed), so a hit is never stale. Writes go through a temp file and os.replace, so concurrent
runs never see half a file; entries unused for CACHE_TTL_DAYS are pruned at most once a day.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

CACHE_TTL_DAYS = 14


def default_dir() -> Path:
    env = os.environ.get("CLOSELINT_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "closelint"


class Cache:
    def __init__(self, folder: Path):
        self.folder = folder

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str):
        path = self._path(key)
        try:
            with open(path, "rb") as fh:
                data = json.loads(fh.read())
            os.utime(path)  # keeps it alive for pruning
            return data
        except (OSError, ValueError):
            return None

    def put(self, key: str, value) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(value, fh, separators=(",", ":"))
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only or full disk only costs speed

    def prune(self) -> None:
        stamp = self.folder / ".pruned"
        now = time.time()
        try:
            if now - stamp.stat().st_mtime < 86400:
                return
        except OSError:
            pass
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            stamp.touch()
            cutoff = now - CACHE_TTL_DAYS * 86400
            for sub in self.folder.iterdir():
                if sub.is_dir():
                    for entry in os.scandir(sub):
                        if entry.stat().st_mtime < cutoff:
                            os.unlink(entry.path)
        except OSError:
            pass
