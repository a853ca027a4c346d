"""A crate's own [features], resolved the way Cargo does for one build of that crate: which of its
features are on, which optional dependencies they switch on, and which features they ask of each
dependency (`dep:x`, `x/feat`, weak `x?/feat`, and optional dependencies as implicit features).
Every result keeps the path that led to it (default -> tls -> reqwest/native-tls) for messages."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from closelint.cargo.manifest import Manifest


@dataclass
class Resolution:
    on: dict[str, tuple[str, ...]] = field(default_factory=dict)  # own feature -> path from a root
    deps_on: dict[str, tuple[str, ...]] = field(default_factory=dict)  # optional dep key -> path
    dep_features: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)  # key -> feat -> path

    def dep_enabled(self, key: str, optional: bool) -> bool:
        return not optional or key in self.deps_on


def resolve(manifest: Manifest, requested=(), default: bool = True) -> Resolution:
    """Features on in a build of manifest's crate that asks for `requested` (with its defaults when
    default is true)."""
    table = manifest.features
    optional = {d.key for d in manifest.deps if d.optional}
    explicit_dep = {v[4:] for vals in table.values() for v in vals if v.startswith("dep:")}
    implicit = {k for k in optional if k not in explicit_dep and k not in table}
    res = Resolution()
    queue: deque = deque()

    def turn_on(feature: str, path: tuple[str, ...]):
        if feature in res.on:
            return
        if feature in table or feature in implicit:
            res.on[feature] = path
            queue.append(feature)

    if default and "default" in table:
        turn_on("default", ("default",))
    for f in requested:
        turn_on(f, (f,))
    weak: list[tuple[str, str, tuple]] = []
    while queue:
        f = queue.popleft()
        path = res.on[f]
        if f in implicit and f not in table:
            res.deps_on.setdefault(f, path)
            continue
        for value in table.get(f, ()):
            if value.startswith("dep:"):
                res.deps_on.setdefault(value[4:], (*path, value))
            elif "/" in value:
                key, feat = value.split("/", 1)
                if key.endswith("?"):
                    weak.append((key[:-1], feat, (*path, value)))
                    continue
                if key in optional:
                    res.deps_on.setdefault(key, (*path, value))
                    if key in implicit:
                        turn_on(key, (*path, value))
                res.dep_features.setdefault(key, {}).setdefault(feat, (*path, value))
            else:
                turn_on(value, (*path, value))
    for key, feat, path in weak:
        if key not in optional or key in res.deps_on:
            res.dep_features.setdefault(key, {}).setdefault(feat, path)
    return res


def all_features(manifest: Manifest) -> Resolution:
    """Every feature on (how Cargo resolves the lock file for workspace members)."""
    table = manifest.features
    optional = [d.key for d in manifest.deps if d.optional]
    return resolve(manifest, [*table, *optional], default=True)
