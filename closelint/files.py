"""Reading, hashing and writing files, the same safe way everywhere.

A scanned tree may hold FIFOs and devices under source-file names, and --output may name
/dev/stdout or /dev/null: reads never block and writes never replace what is not a regular file.
"""

from __future__ import annotations

import os
import stat

try:  # the blake2 module alone: hashlib would also load OpenSSL, a noticeable part of start-up
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - not CPython
    from hashlib import blake2b


def read_file(path: str) -> bytes:
    """A regular file's bytes; O_NONBLOCK so that a file turned into a FIFO since it was listed
    cannot hang the scan (OSError for anything but a regular file)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file")
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def content_digest(data: bytes) -> str:
    return blake2b(data, digest_size=16).hexdigest()


def write_atomically(path, data: bytes) -> None:
    """Write data to path so that readers see the old file or the new one, never half of one: a
    temporary file beside it, then a rename. A path that exists and is not a regular file (a
    device, a FIFO, /dev/stdout) is written to as it is; renaming onto it would replace the
    device itself. Raises OSError."""
    target = os.path.realpath(path)
    try:
        if not stat.S_ISREG(os.stat(target).st_mode):
            with open(target, "wb") as fh:
                fh.write(data)
            return
    except FileNotFoundError:
        pass
    import tempfile  # only when something is written: a warm scan writes nothing

    folder, name = os.path.split(target)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
