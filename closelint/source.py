"""One source file as the analyses see it: bytes, a lazily parsed tree, and position conversion."""

from __future__ import annotations

import re
from pathlib import Path

from closelint.findings import Location, Notification

LANG_BY_SUFFIX = {".go": "go", ".rs": "rust", ".toml": "toml", ".lock": "toml", ".mod": "gomod"}
_WS = re.compile(r"\s+")


class SourceFile:
    """A file of a unit. is_target says whether findings in it are reported (a Go package's sibling
    files are read for context only when pre-commit passes a single file)."""

    def __init__(self, path: Path, data: bytes, *, is_target: bool = True, notes: list | None = None):
        self.path = path
        self.data = data
        self.is_target = is_target
        self.lang = LANG_BY_SUFFIX.get(path.suffix, "")
        self._tree = None
        self._lines = None
        self._notes = notes if notes is not None else []

    def __repr__(self):
        return f"SourceFile({self.path})"

    @property
    def tree(self):
        if self._tree is None:
            from closelint import parsing
            from closelint.treeutil import first_error

            self._tree = parsing.parser(self.lang).parse(self.data)
            root = self._tree.root_node
            if root.has_error and self.is_target:
                bad = first_error(root)
                line = bad.start_point[0] + 1 if bad is not None else 0
                self.note(f"could not parse line {line} (a syntax error, or syntax newer than closelint's "
                          "grammar); analysed the rest", line=line)
        return self._tree

    def note(self, message: str, level: str = "warning", line: int = 0) -> None:
        """Tell the user something about this file (one line on stderr, a SARIF notification)."""
        self._notes.append(Notification(str(self.path), message, level, line))

    @property
    def root(self):
        return self.tree.root_node

    @property
    def lines(self) -> list[bytes]:
        if self._lines is None:
            self._lines = self.data.split(b"\n")
        return self._lines

    def line_text(self, line: int) -> str:
        """Line (1-based) as text, without its newline."""
        lines = self.lines
        if 1 <= line <= len(lines):
            return lines[line - 1].rstrip(b"\r").decode("utf-8", "replace")
        return ""

    def _columns(self, row: int, byte_col: int) -> tuple[int, int]:
        prefix = self.lines[row][:byte_col] if row < len(self.lines) else b""
        text = prefix.decode("utf-8", "replace")
        return len(text) + 1, len(text.encode("utf-16-le")) // 2 + 1

    def location(self, node=None, *, start=None, end=None, message: str = "") -> Location:
        """A Location for a node, or for explicit (row, byte column) start/end points."""
        start = start if start is not None else node.start_point
        end = end if end is not None else node.end_point
        (srow, scol), (erow, ecol) = start, end
        col, col16 = self._columns(srow, scol)
        ecol_, ecol16 = self._columns(erow, ecol)
        return Location(str(self.path), srow + 1, col, erow + 1, ecol_, col16, ecol16, message)

    def snippet(self, node) -> str:
        """The normalized text of the node's first line, for fingerprints."""
        return _WS.sub(" ", self.line_text(node.start_point[0] + 1)).strip()
