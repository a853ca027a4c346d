"""Which files a scan reads.

Folders are walked without following symlinked folders (so symlink loops cannot loop), honouring
nested .gitignore files and the config's exclude patterns (gitignore syntax, relative to the config's
folder). Only regular files are taken: a FIFO named x.go must not hang the scan. A file named on the
command line is scanned unless --force-exclude is given and it is excluded, the way ruff does it.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from closelint.findings import Notification

SOURCE_SUFFIXES = (".go", ".rs")
MANIFEST_NAMES = ("Cargo.toml", "Cargo.lock", "go.mod")


def is_candidate(name: str) -> bool:
    return name.endswith(SOURCE_SUFFIXES) or name in MANIFEST_NAMES


class PathError(Exception):
    """A path named on the command line does not exist: a usage error."""


@dataclass
class Discovery:
    files: list[Path] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)


class _Spec:
    """A gitignore spec with a quick first look: one regex made of all its patterns says whether any
    of them can match (most paths match none), and only then does pathspec decide, with git's rules
    for negations and directories."""

    def __init__(self, lines: list[str]):
        import pathspec

        self._spec = pathspec.GitIgnoreSpec.from_lines(lines)
        regexes = [p.regex.pattern for p in self._spec.patterns
                   if p.include is not None and getattr(p, "regex", None) is not None]
        try:  # pathspec names a group in each pattern; one regex may name it once only
            self._any = re.compile("|".join(f"(?:{_NAMED_GROUP.sub('(?:', r)})" for r in regexes)) if regexes else None
        except re.error:
            self._any = _EVERYTHING

    def decide(self, rel: str) -> bool | None:
        """True: ignored; False: re-included by a negation; None: no pattern says."""
        if self._any is None or self._any.search(rel) is None:
            return None
        return self._spec.check_file(rel).include

    def matches(self, rel: str) -> bool:
        return bool(self.decide(rel))


_NAMED_GROUP = re.compile(r"\(\?P<\w+>")
_EVERYTHING = re.compile("")


class _Excluder:
    def __init__(self, root: Path, patterns: list[str]):
        self.root = root
        self.spec = _Spec(patterns)
        self._gitignores: dict[Path, object] = {}

    def _rel(self, path: Path, base: Path) -> str | None:
        try:
            return path.relative_to(base).as_posix()
        except ValueError:
            return None

    def config_excludes(self, path: Path, is_dir: bool) -> bool:
        rel = self._rel(path, self.root)
        if rel is None:
            # Outside the config's folder: patterns still apply to the name's own path parts.
            rel = path.name
        return self.spec.matches(rel + "/" if is_dir else rel)

    def gitignore(self, folder: Path):
        if folder not in self._gitignores:
            spec = None
            gi = folder / ".gitignore"
            try:
                if gi.is_file():
                    spec = _Spec(gi.read_text(encoding="utf-8", errors="replace").splitlines())
            except OSError:
                spec = None
            self._gitignores[folder] = spec
        return self._gitignores[folder]

    def git_ignored(self, path: Path, is_dir: bool, top: Path) -> bool:
        """Nested .gitignore files from path's folder up to top; the deepest decisive one wins."""
        folder = path.parent
        while True:
            spec = self.gitignore(folder)
            if spec is not None:
                rel = self._rel(path, folder)
                if rel is not None:
                    result = spec.decide(rel + "/" if is_dir else rel)
                    if result is not None:
                        return result
            if folder == top or folder.parent == folder:
                return False
            folder = folder.parent


def _git_top(start: Path) -> Path:
    """The enclosing git work tree (found by looking for .git, never by running git), else start."""
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start


def discover(paths: list[str], exclude: list[str], root: Path, *, force_exclude: bool = False) -> Discovery:
    out = Discovery()
    excluder = _Excluder(root, exclude)
    seen: set[Path] = set()

    def add(p: Path):
        if p not in seen:
            seen.add(p)
            out.files.append(p)

    for raw in paths:
        p = Path(raw)
        try:
            st = p.stat()
        except FileNotFoundError:
            if p.is_symlink():
                out.notifications.append(Notification(raw, "broken symlink, skipped"))
                continue
            raise PathError(f"no such file or directory: {raw}") from None
        except OSError as exc:
            out.notifications.append(Notification(raw, f"cannot read: {exc.strerror or exc}, skipped"))
            continue
        p = Path(os.path.abspath(p))
        if stat.S_ISDIR(st.st_mode):
            _walk(p, excluder, add, out)
        elif not stat.S_ISREG(st.st_mode):
            out.notifications.append(Notification(str(p), "not a regular file, skipped"))
        elif is_candidate(p.name):
            if force_exclude and (excluder.config_excludes(p, False)
                                  or any(excluder.config_excludes(a, True) for a in p.parents)
                                  or excluder.git_ignored(p, False, _git_top(p.parent))):
                continue
            add(p)
    out.files.sort()
    return out


def _walk(top: Path, excluder: _Excluder, add, out: Discovery):
    """Walk top with plain strings and a stack of the .gitignore specs in force (loaded once per
    folder, inherited by subfolders): no per-file climb to the work tree's root."""
    git_top = _git_top(top)
    inherited = []  # .gitignore files between the work tree's root and top
    if git_top != top:
        for folder in reversed([top.parent, *top.parent.parents]):
            if len(folder.parts) >= len(git_top.parts):
                spec = excluder.gitignore(folder)
                if spec is not None:
                    inherited.append((str(folder), spec))
    root = str(excluder.root)

    def excluded(path: str, is_dir: bool, specs) -> bool:
        suffix = "/" if is_dir else ""
        rel = path[len(root) + 1:] if path.startswith(root + os.sep) else os.path.basename(path)
        if excluder.spec.matches(rel + suffix):
            return True
        for base, spec in reversed(specs):  # the deepest .gitignore that decides wins
            decided = spec.decide(path[len(base) + 1:] + suffix)
            if decided is not None:
                return decided
        return False

    stack = [(str(top), tuple(inherited))]
    while stack:
        folder, specs = stack.pop()
        spec = excluder.gitignore(Path(folder))
        if spec is not None:
            specs = (*specs, (folder, spec))
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            out.notifications.append(Notification(folder, f"cannot list folder: {exc.strerror or exc}"))
            continue
        subdirs = []
        for entry in entries:
            name, path = entry.name, entry.path
            try:
                if entry.is_dir(follow_symlinks=False):
                    if name != ".git" and not excluded(path, True, specs):
                        subdirs.append((path, specs))
                    continue
                if not is_candidate(name):
                    continue
                # Follows a symlinked file; a loop or a dangling link answers False.
                if not entry.is_file():
                    why = "broken or looping symlink" if entry.is_symlink() else "not a regular file"
                    out.notifications.append(Notification(path, f"{why}, skipped"))
                    continue
                if entry.is_symlink() and not stat.S_ISREG(entry.stat().st_mode):
                    continue
            except OSError as exc:
                out.notifications.append(Notification(path, f"cannot read: {exc.strerror or exc}, skipped"))
                continue
            if not excluded(path, False, specs):
                add(Path(path))
        stack.extend(reversed(subdirs))
