"""What a unit's analysis saw outside the unit, so that a cached result is reused only while it
still looks the same.

A Rust unit reads the crate's other files to find who calls a function and its parent's
`#[cfg(test)] mod x;`; the Cargo unit follows workspace globs; both ask whether a Cargo.toml
exists here or there. The cache key covers the unit's own bytes; these observations are stored
with the result and checked again (Recheck) before a hit is used. Every question goes through
Observer, and `observe` answers it the same way when recording and when checking.
"""

from __future__ import annotations

import os
from pathlib import Path

from closelint.files import content_digest, read_file

# Past this many .rs files a crate's src/ is not searched for callers (the answer is "unknown").
MAX_TREE_FILES = 5000


def observe(question: str) -> str:
    """The answer to a recorded question ("<kind>\\0<path>[\\0<pattern>]"), as a short string."""
    kind, _, rest = question.partition("\0")
    if kind == "read":
        try:
            return content_digest(read_file(rest))
        except OSError:
            return "-"
    if kind == "file":
        return "1" if os.path.isfile(rest) else "0"
    if kind == "exists":
        return "1" if os.path.exists(rest) else "0"
    if kind == "rs-tree":
        return _digest(rs_files_under(Path(rest)))
    if kind == "glob":
        folder, _, pattern = rest.partition("\0")
        return _digest(_glob(Path(folder), pattern))
    return "?"


def _digest(paths) -> str:
    return content_digest("\n".join(map(str, paths)).encode())


def rs_files_under(folder: Path) -> list[Path]:
    """The .rs files under folder, hidden folders skipped, in a stable order ([] past MAX_TREE_FILES)."""
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(Path(dirpath) / n for n in sorted(filenames) if n.endswith(".rs"))
        if len(out) > MAX_TREE_FILES:
            return []
    return out


def _glob(folder: Path, pattern: str) -> list[Path]:
    try:
        return sorted(folder.glob(pattern))
    except (ValueError, OSError):
        return []


class Recheck:
    """Asks recorded questions again for one scan, each question once (units of one crate ask the
    same ones); a file's content digest comes from file_digest when given (the scan's
    cache.FileDigests, which stats rather than reads a file it has seen unchanged)."""

    def __init__(self, file_digest=None):
        self._file_digest = file_digest
        self._answers: dict[str, str] = {}

    def still_true(self, seen: dict) -> bool:
        """Every recorded observation still holds."""
        return all(self._answer(q) == answer for q, answer in seen.items())

    def _answer(self, question: str) -> str:
        answer = self._answers.get(question)
        if answer is None:
            kind, _, path = question.partition("\0")
            if kind == "read" and self._file_digest is not None:
                answer = self._file_digest(path) or "-"
            else:
                answer = observe(question)
            self._answers[question] = answer
        return answer


class Observer:
    """The file system as a unit's rules see it outside the unit, each answer recorded."""

    def __init__(self):
        self.seen: dict[str, str] = {}

    def _record(self, question: str, answer: str) -> None:
        self.seen.setdefault(question, answer)

    def read_bytes(self, path: Path) -> bytes | None:
        try:
            data = read_file(str(path))
        except OSError:
            self._record(f"read\0{path}", "-")
            return None
        self._record(f"read\0{path}", content_digest(data))
        return data

    def is_file(self, path) -> bool:
        yes = os.path.isfile(path)
        self._record(f"file\0{path}", "1" if yes else "0")
        return yes

    def exists(self, path) -> bool:
        yes = os.path.exists(path)
        self._record(f"exists\0{path}", "1" if yes else "0")
        return yes

    def rs_files_under(self, folder: Path) -> list[Path]:
        found = rs_files_under(folder)
        self._record(f"rs-tree\0{folder}", _digest(found))
        return found

    def glob(self, folder: Path, pattern: str) -> list[Path]:
        found = _glob(Path(folder), pattern)
        self._record(f"glob\0{folder}\0{pattern}", _digest(found))
        return found
