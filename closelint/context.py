"""What a rule's check(ctx) receives: one analysis unit, its rule's data, and a way to make findings.

Units: a Go package folder (every .go file of the folder is read so that methods and helpers in
sibling files are visible; findings are kept only for the files asked for), a folder of Rust files,
or all the Cargo manifests and lock files of the scan.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from closelint.findings import Finding
from closelint.observed import Observer
from closelint.rulebook import Rule
from closelint.source import SourceFile

_GO_DIRECTIVE = re.compile(rb"(?m)^go[ \t]+(\d+)\.(\d+)")


@lru_cache(maxsize=256)
def go_mod_for(folder: Path) -> Path | None:
    """The nearest go.mod at or above folder."""
    for d in (folder, *folder.parents):
        candidate = d / "go.mod"
        if candidate.is_file():
            return candidate
    return None


@lru_cache(maxsize=256)
def go_version_of(go_mod: Path | None) -> tuple[int, int] | None:
    if go_mod is None:
        return None
    try:
        m = _GO_DIRECTIVE.search(go_mod.read_bytes())
    except OSError:
        return None
    return (int(m.group(1)), int(m.group(2))) if m else None


class UnitContext:
    """Shared by every rule that runs on one unit: files, and facts computed once (the package index)."""

    def __init__(self, kind: str, folder: Path, files: list[SourceFile], notes: list | None = None):
        self.kind = kind  # "go" | "rust" | "cargo"
        self.folder = folder
        self.files = files
        self._package = None
        self._notes = notes if notes is not None else []
        self._by_path: dict[Path, SourceFile | None] = {f.path: f for f in files}
        self.shared: dict = {}  # facts computed once per unit, keyed by whoever computes them
        self.fs = Observer()  # everything outside the unit goes through here (see closelint.observed)

    @property
    def targets(self) -> list[SourceFile]:
        return [f for f in self.files if f.is_target]

    @property
    def package(self):
        """The Go package index (functions, methods by receiver, struct fields, imports)."""
        if self._package is None:
            from closelint.golang.package import GoPackage

            self._package = GoPackage([f for f in self.files if f.lang == "go"])
        return self._package

    def read(self, path: Path) -> SourceFile | None:
        """A file outside the unit, read for context only (a workspace's root Cargo.toml, Cargo.lock)."""
        path = Path(path)
        if path not in self._by_path:
            data = self.fs.read_bytes(path)
            self._by_path[path] = None if data is None else SourceFile(path, data, is_target=False, notes=self._notes)
        return self._by_path[path]


class RuleContext:
    """One rule's view of a unit."""

    def __init__(self, unit: UnitContext, rule: Rule, options: dict, catalogs: dict,
                 all_catalogs: dict | None = None):
        self.unit = unit
        self.rule = rule
        self.options = options
        self.catalogs = catalogs
        self._all_catalogs = all_catalogs or {}

    def pattern(self, key: str):
        """An option that is a regular expression (named *-pattern, validated with the config),
        compiled; None when empty."""
        value = self.options.get(key, "")
        return re.compile(value) if value else None

    def catalogs_of(self, code: str) -> dict:
        """Another rule's catalog tables with the user's rows added (CL105 releases what CL101 knows)."""
        return self._all_catalogs.get(code, {})

    # The unit's facts, for convenience
    @property
    def files(self):
        return self.unit.files

    @property
    def targets(self):
        return self.unit.targets

    @property
    def package(self):
        return self.unit.package

    @property
    def shared(self):
        return self.unit.shared

    def read(self, path):
        return self.unit.read(path)

    @property
    def fs(self):
        """Existence checks, listings and globs outside the unit (recorded for the cache)."""
        return self.unit.fs

    def go_version(self, file: SourceFile) -> tuple[int, int] | None:
        """The `go` directive of the nearest go.mod above file, e.g. (1, 22); None without one."""
        return go_version_of(go_mod_for(file.path.parent))

    def finding(self, file: SourceFile, node, message: str, *, level: str | None = None,
                related=(), function: str = "", start=None, end=None) -> Finding:
        """A finding at node (or explicit start/end points) in file.

        related: (file, node, message) triples for second places to show (a leaking return, the
        blocking call a goroutine waits in, the Cargo.lock entries of a chain).
        """
        loc = file.location(node, start=start, end=end)
        rel = tuple(f.location(n, message=m) for f, n, m in related)
        snippet = file.snippet(node) if node is not None else file.line_text(loc.line).strip()
        return Finding(self.rule.code, self.rule.name, level or self.rule.level, message, loc,
                       function=function, snippet=snippet, related=rel)
