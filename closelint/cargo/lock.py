"""A Cargo.lock (format v1 to v4) as a graph: packages and the edges Cargo resolved.

The lock is written for every target platform and with every feature of the workspace members on,
so it is a superset of what one default build compiles: an edge here is an edge that *some*
configuration builds. v1's [metadata] checksums are ignored.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from closelint.cargo.manifest import ManifestError, _line_of

_HEADER = re.compile(rb"^\[\[package\]\]\s*(?:#.*)?$")
_NAME = re.compile(rb'^name\s*=\s*"([^"]*)"')


@dataclass
class Package:
    index: int
    name: str
    version: str
    source: str | None
    raw_deps: list[str]
    line: int = 0  # 1-based line of `name = "..."` in the lock file (0 when unknown)
    deps: list[int] = field(default_factory=list)

    @property
    def is_local(self) -> bool:
        """A workspace member or a path dependency (no registry or git source)."""
        return self.source is None

    def __str__(self):
        return f"{self.name} {self.version}"


@dataclass
class Lock:
    path: Path
    version: int
    packages: list[Package]
    by_name: dict[str, list[Package]]

    def find(self, name: str, version: str | None = None) -> Package | None:
        cands = self.by_name.get(name, ())
        if version is not None:
            cands = [p for p in cands if p.version == version]
        return cands[0] if len(cands) >= 1 else None

    def local(self, name: str) -> list[Package]:
        return [p for p in self.by_name.get(name, ()) if p.is_local]


_FAST = re.compile(r'^(?:(?P<key>name|version|source|checksum|replace) = "(?P<val>[^"\\]*)"'
                   r'|(?P<deps>dependencies = \[)|(?P<item> "(?P<dep>[^"\\]*)",)|(?P<close>\])'
                   r'|(?P<header>\[\[package\]\])|(?P<fmt>version = (?P<n>\d+))|(?P<meta>\[metadata\])'
                   r'|(?P<sum>"checksum [^"\\]*" = "[^"\\]*")|(?P<blank>\s*(?:#.*)?))$')


def _fast(text: str):
    """Cargo writes its lock files in one fixed layout: read that layout line by line (ten times faster
    than a TOML parser on a 15,000-line lock). None when a line does not fit, and tomllib reads it."""
    packages: list[dict] = []
    version = 1
    cur = None
    in_deps = False
    in_meta = False
    for i, line in enumerate(text.split("\n")):
        m = _FAST.match(line.rstrip("\r"))
        if m is None:
            return None
        if m.group("blank") is not None:
            continue
        if in_deps:
            if m.group("item") is not None:
                cur["dependencies"].append(m.group("dep"))
                continue
            if m.group("close") is not None:
                in_deps = False
                continue
            return None
        if m.group("header") is not None:
            cur = {"dependencies": [], "_line": i + 1}
            packages.append(cur)
            in_meta = False
        elif m.group("meta") is not None:
            in_meta, cur = True, None
        elif m.group("sum") is not None:
            if not in_meta:
                return None
        elif m.group("fmt") is not None:
            if cur is not None or in_meta:
                return None
            version = int(m.group("n"))
        elif m.group("key") is not None:
            if cur is None or m.group("key") in cur:
                return None
            cur[m.group("key")] = m.group("val")
        elif m.group("deps") is not None:
            if cur is None:
                return None
            in_deps = True
        else:
            return None
    if in_deps:
        return None
    return {"version": version, "package": packages}


def parse(path: Path, data: bytes) -> Lock:
    text = data.decode("utf-8", "replace")
    doc = _fast(text)
    if doc is None:
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ManifestError(str(exc), _line_of(str(exc))) from None
        except RecursionError:  # tomllib recurses on nested arrays and inline tables
            raise ManifestError("arrays or inline tables nested too deeply to read") from None
    raw = doc.get("package", [])
    if not isinstance(raw, list):
        raw = []
    packages: list[Package] = []
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        deps = entry.get("dependencies", [])
        packages.append(Package(
            len(packages), entry["name"], str(entry.get("version", "")),
            entry.get("source") if isinstance(entry.get("source"), str) else None,
            [d for d in deps if isinstance(d, str)] if isinstance(deps, list) else []))
    by_name: dict[str, list[Package]] = {}
    for p in packages:
        by_name.setdefault(p.name, []).append(p)
    for p in packages:
        for d in p.raw_deps:
            target = _resolve(d, by_name)
            if target is not None and target.index != p.index:
                p.deps.append(target.index)
    _lines(data, packages)
    version = doc.get("version", 1)
    return Lock(path, version if isinstance(version, int) else 1, packages, by_name)


def _resolve(dep: str, by_name: dict) -> Package | None:
    """"name", "name version" or "name version (source)" -> the package it names."""
    parts = dep.split(" ", 2)
    cands = by_name.get(parts[0])
    if not cands:
        return None
    if len(parts) >= 2:
        exact = [p for p in cands if p.version == parts[1]]
        if len(parts) == 3 and len(exact) > 1:
            source = parts[2].strip("()")
            exact = [p for p in exact if p.source == source] or exact
        if exact:
            return exact[0]
    return cands[0]


def _lines(data: bytes, packages: list[Package]) -> None:
    """The line of each package's `name = "..."`, by walking the [[package]] headers in order."""
    lines = data.split(b"\n")
    names = []
    i = 0
    while i < len(lines):
        if _HEADER.match(lines[i].strip()):
            j = i + 1
            while j < len(lines) and not lines[j].lstrip().startswith(b"["):
                m = _NAME.match(lines[j].strip())
                if m:
                    names.append((m.group(1).decode("utf-8", "replace"), j + 1))
                    break
                j += 1
            i = j
        i += 1
    if len(names) == len(packages) and all(n == p.name for (n, _), p in zip(names, packages)):
        for (_, line), p in zip(names, packages):
            p.line = line
