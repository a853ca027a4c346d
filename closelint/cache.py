"""A content-addressed result cache, one small marshal file per analysis unit.

The key covers the bytes of the unit's own files, closelint's version, the rulebook and the config;
what the analysis saw outside the unit (a parent module, the crate's other files, Cargo.toml
files found by walking up) is stored with the entry and checked again before a hit is used
(closelint.observed), so a hit is never stale. Writes go through a temp file and os.replace, so concurrent
runs never see half a file; entries unused for CACHE_TTL_DAYS are pruned at most once a day.
Entries hold plain values only (str, int, list, dict) and are read with marshal, like a .pyc.
"""

from __future__ import annotations

import marshal
import os
import time
from pathlib import Path

from closelint.files import blake2b, content_digest, read_file, write_atomically

CACHE_TTL_DAYS = 14
_DAY = 86400

# A file whose status changed this recently may change again within the same timestamp tick,
# leaving its stat as it was: its digest is not kept (git calls such entries "racily clean").
RACY_NS = 3_000_000_000


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
        return self.folder / key[:2] / f"{key}.marshal"

    def get(self, key: str):
        path = self._path(key)
        try:
            with open(path, "rb") as fh:
                data = marshal.loads(fh.read())
                if time.time() - os.fstat(fh.fileno()).st_mtime > _DAY:
                    os.utime(path)  # in use: keep it from pruning (a day's precision is enough)
            return data if isinstance(data, dict) else None
        except (OSError, EOFError, ValueError, TypeError):
            return None

    def put(self, key: str, value) -> None:
        _keep(self._path(key), marshal.dumps(value))

    def file_digests_path(self, scanned: list[str]) -> Path:
        """Where the file digests of a scan of these paths are kept."""
        named = "\0".join(sorted(os.path.abspath(p) for p in scanned))
        return self.folder / "files" / f"{blake2b(named.encode(), digest_size=16).hexdigest()}.marshal"

    def prune(self) -> None:
        stamp = self.folder / ".pruned"
        now = time.time()
        try:
            if now - stamp.stat().st_mtime < _DAY:
                return
        except OSError:
            pass
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            stamp.touch()
            cutoff = now - CACHE_TTL_DAYS * _DAY
            for sub in self.folder.iterdir():
                if sub.is_dir():
                    for entry in os.scandir(sub):
                        if entry.stat().st_mtime < cutoff:
                            os.unlink(entry.path)
        except OSError:
            pass


class FileDigests:
    """Content digests of files, kept between scans and reused while a file's inode, size, mtime and
    ctime are what they were when it was hashed, as git's index does for `git status`: a re-scan of
    unchanged code stats its files instead of reading them. ctime cannot be set back by tools that
    restore mtimes (tar, rsync -t, touch -d), and a file changed within RACY_NS of being hashed is
    hashed again next time. One file per set of scanned paths; a lost or broken one costs a re-read."""

    def __init__(self, path: Path | None, read=read_file):
        self.path = path
        self._read = read  # path -> bytes; raises OSError
        self._kept: dict = {}
        self._now: dict = {}
        if path is not None:
            try:
                kept = marshal.loads(path.read_bytes())
                self._kept = kept if isinstance(kept, dict) else {}
            except (OSError, EOFError, ValueError, TypeError):
                pass

    def __call__(self, path: str) -> str | None:
        """The digest of path's bytes, None if it cannot be read."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        status = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        kept = self._kept.get(path)
        if type(kept) is tuple and len(kept) == 2 and kept[0] == status:
            self._now[path] = kept
            return kept[1]
        try:
            digest = content_digest(self._read(path))
        except OSError:
            return None
        if time.time_ns() - st.st_ctime_ns > RACY_NS and time.time_ns() - st.st_mtime_ns > RACY_NS:
            self._now[path] = (status, digest)
        return digest

    def save(self) -> None:
        """Keep the digests of the files this scan looked at (so deleted files drop out)."""
        if self.path is not None and self._now != self._kept:
            _keep(self.path, marshal.dumps(self._now))


def _keep(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, data)
    except OSError:
        pass  # a read-only or full disk only costs speed
