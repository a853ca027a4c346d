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
from pathlib import Path

from closelint.files import read_file
from closelint.findings import Notification

SOURCE_SUFFIXES = (".go", ".rs")
MANIFEST_NAMES = ("Cargo.toml", "Cargo.lock", "go.mod")


def is_candidate(name: str) -> bool:
    return name.endswith(SOURCE_SUFFIXES) or name in MANIFEST_NAMES


class PathError(Exception):
    """A path named on the command line does not exist: a usage error."""


class Discovery:
    def __init__(self):
        self.files: list[str] = []  # absolute paths, sorted
        # Every Go file (regular, not a symlink) in each folder the walk listed, taken or not: a Go
        # package's files beyond those scanned are its context, and the walk has already seen them.
        self.go_files: dict[str, list[str]] = {}
        self.notifications: list[Notification] = []


class IgnoreSpec:
    """A gitignore spec that compiles nothing until a path may match.

    Each pattern's literal runs must appear verbatim in any path it matches (wildcards only add
    characters between them), at a known place: a run that starts the pattern starts a path
    component, or the path itself when the pattern is anchored; one that ends the pattern ends a
    component. A path that fails those substring tests for every pattern matches none: that is
    the answer for most paths. A pattern that is a plain path (`vendor/`, `/build`, `docs/out`,
    the commonest kind, and every default exclude) is then decided by comparing path components.
    Otherwise pathspec decides, with git's rules for wildcards, negations and directories, over
    just the patterns that may match (the others cannot change the outcome); those small specs
    are built on first use. So a scan that meets no wildcard pattern never imports pathspec."""

    def __init__(self, lines: list[str]):
        self._lines: list[str] = []
        self._needles: list[tuple[tuple[str, bool], ...]] = []
        self._plain: list[_PlainPath | None] = []
        for line in lines:
            if not line.strip() or line.startswith("#"):
                continue
            self._lines.append(line)
            self._needles.append(_needles(line))
            self._plain.append(_PlainPath.of(line))
        self._specs: dict[tuple[int, ...], object] = {}
        # A pattern needs all its needles: a path that holds none of the patterns' longest needles
        # matches none of them, found with one search (an alternation of plain strings compiles quickly).
        # A pattern without needles (`*`, `[ab]`) may match anything: then every path looks closer.
        self._quick = None if all(self._needles) else _EVERYTHING

    def decide(self, rel: str) -> bool | None:
        """True: ignored; False: re-included by a negation; None: no pattern says."""
        padded = f"/{rel}/"
        if self._quick is None:
            needles = sorted({max((n for n, _ in needles), key=len) for needles in self._needles},
                             key=len, reverse=True)
            self._quick = re.compile("|".join(map(re.escape, needles))) if needles else _NOTHING
        if self._quick.search(padded) is None:
            return None
        hits = tuple(i for i, needles in enumerate(self._needles)
                     if all(padded.startswith(n) if at_start else n in padded for n, at_start in needles))
        if not hits:
            return None
        if all(self._plain[i] is not None for i in hits):  # no negation among them: any match ignores
            return True if any(self._plain[i].matches(rel) for i in hits) else None
        spec = self._specs.get(hits)
        if spec is None:
            spec = self._specs[hits] = _compile([self._lines[i] for i in hits])
        return spec.check_file(rel).include

    def matches(self, rel: str) -> bool:
        return bool(self.decide(rel))


class _PlainPath:
    """A pattern with no wildcard, escape, bracket or negation: `name` matches a component named
    so at any depth, a pattern with a slash before its end matches from the spec's folder, and a
    trailing slash asks for a directory; what is under a matched directory is matched too."""

    __slots__ = ("parts", "anchored", "dir_only")

    def __init__(self, parts: list[str], anchored: bool, dir_only: bool):
        self.parts, self.anchored, self.dir_only = parts, anchored, dir_only

    @classmethod
    def of(cls, line: str) -> _PlainPath | None:
        pattern = line.rstrip()
        dir_only = pattern.endswith("/")
        body = pattern.rstrip("/")
        anchored = "/" in body
        parts = body.lstrip("/").split("/")
        if not all(part and _PLAIN_PART.fullmatch(part) and part not in (".", "..") for part in parts):
            return None
        return cls(parts, anchored, dir_only)

    def matches(self, rel: str) -> bool:
        is_dir = rel.endswith("/")
        comps = rel.rstrip("/").split("/")
        k = len(self.parts)
        # A directory-only pattern matches a directory: one with more below it, or rel itself as one.
        starts = [0] if self.anchored else range(len(comps) - k + 1)
        return any(comps[i:i + k] == self.parts and (not self.dir_only or i + k < len(comps) or is_dir)
                   for i in starts)


_PLAIN_PART = re.compile(r"[A-Za-z0-9._@+=,~%:-]+")


def _compile(lines: list[str]):
    """pathspec's spec of these lines; a line pathspec cannot read is left out, as git discards an
    invalid pattern (a trailing backslash, a reversed range)."""
    import pathspec

    try:
        return pathspec.GitIgnoreSpec.from_lines(lines)
    except Exception:  # noqa: BLE001 - pathspec raises ValueError, re.error, its own errors
        valid = []
        for line in lines:
            try:
                pathspec.GitIgnoreSpec.from_lines([line])
            except Exception:  # noqa: BLE001
                continue
            valid.append(line)
        return pathspec.GitIgnoreSpec.from_lines(valid)


_EVERYTHING = re.compile("")
_NOTHING = re.compile("(?!)")


# A character that stands for itself in a gitignore pattern. Wildcards, brackets, escapes and
# spaces (which git may strip) end a literal run; a shorter run is only a weaker test.
_LITERAL_RUN = re.compile(r"[^*?\\[\]\s]+")
_BRACKET = re.compile(r"\[[!^]?\]?[^\]]*\]")


def _needles(line: str) -> tuple[tuple[str, bool], ...]:
    """Substring tests every path the pattern matches passes, as (needle, must start the path),
    for the path written as "/rel/" (so "/x" starts a component and "x/" ends one)."""
    pattern = line if line.endswith("\\ ") else line.rstrip()  # as git and pathspec read it
    pattern = pattern[1:] if pattern.startswith("!") else pattern
    if pattern.endswith("/"):  # directory-only: the same text, matched as a whole component
        pattern = pattern[:-1]
    anchored = "/" in pattern  # git: a slash at the start or in the middle anchors the pattern
    pattern = pattern.lstrip("/")
    pattern = _BRACKET.sub("?", pattern)  # one character, whatever its set
    if "[" in pattern:  # an unclosed bracket: keep what comes before it, with no end to rely on
        pattern = pattern[: pattern.index("[")] + "*"
    needles = []
    for run in _LITERAL_RUN.finditer(pattern):
        text = run.group()
        starts, ends = run.start() == 0, run.end() == len(pattern)
        if starts or text.startswith("/"):
            text = "/" + text.lstrip("/")
        if ends or text.endswith("/"):
            text = text.rstrip("/") + "/"
        if text != "/":  # every path has one
            needles.append((text, starts and anchored))
    return tuple(needles)


class _Excluder:
    def __init__(self, root: Path, patterns: list[str]):
        self.root = root
        self.spec = IgnoreSpec(patterns)
        self._gitignores: dict[str, IgnoreSpec | None] = {}

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

    def gitignore(self, folder: str) -> IgnoreSpec | None:
        if folder not in self._gitignores:
            spec = None
            try:
                data = read_file(os.path.join(folder, ".gitignore"))
                spec = IgnoreSpec(data.decode("utf-8", "replace").splitlines())
            except OSError:  # none, a folder, a FIFO (never opened blocking), unreadable
                spec = None
            self._gitignores[folder] = spec
        return self._gitignores[folder]

    def git_ignored(self, path: Path, is_dir: bool, top: Path) -> bool:
        """Nested .gitignore files from path's folder up to top; the deepest decisive one wins."""
        folder = path.parent
        while True:
            spec = self.gitignore(str(folder))
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
    seen: set[str] = set()

    def add(p: str):
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
            add(str(p))
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
                spec = excluder.gitignore(str(folder))
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
        spec = excluder.gitignore(folder)
        if spec is not None:
            specs = (*specs, (folder, spec))
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            out.notifications.append(Notification(folder, f"cannot list folder: {exc.strerror or exc}"))
            continue
        subdirs = []
        go_files = out.go_files[folder] = []
        for entry in entries:
            name, path = entry.name, entry.path
            try:
                if entry.is_dir(follow_symlinks=False):
                    if name != ".git" and not excluded(path, True, specs):
                        subdirs.append((path, specs))
                    continue
                if not is_candidate(name):
                    continue
                if name.endswith(".go") and entry.is_file(follow_symlinks=False):
                    go_files.append(path)
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
                add(path)
        stack.extend(reversed(subdirs))
