"""A Cargo.toml as Cargo reads it: dependencies of every kind and target, workspace inheritance,
features; and where each dependency is written (line and column of its key)."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

KINDS = {
    "dependencies": "normal", "dev-dependencies": "dev", "dev_dependencies": "dev",
    "build-dependencies": "build", "build_dependencies": "build",
}


class ManifestError(ValueError):
    """Not valid TOML; .line is the 1-based line tomllib names (0 when unknown)."""

    def __init__(self, message: str, line: int = 0):
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Dep:
    key: str                      # the name written in the manifest (a rename when package is set)
    package: str                  # the crate's published name
    kind: str                     # "normal" | "dev" | "build" | "workspace"
    target: str | None            # the <spec> of [target.<spec>.*], or None
    section: tuple[str, ...]      # key path of the table holding it
    spec: object                  # the raw value: a version string or a table
    version: str | None = None
    features: tuple[str, ...] = ()
    default_features: bool | None = None  # as written (None: not written)
    default_key: str = "default-features"  # the spelling the user wrote, if any
    optional: bool = False
    workspace: bool = False       # `workspace = true`
    path: str | None = None
    git: str | None = None

    @property
    def path_key(self) -> tuple[str, ...]:
        return (*self.section, self.key)


@dataclass
class Manifest:
    path: Path
    data: dict
    deps: list[Dep] = field(default_factory=list)
    workspace_deps: dict[str, Dep] = field(default_factory=dict)

    @property
    def name(self) -> str | None:
        pkg = self.data.get("package")
        if isinstance(pkg, dict) and isinstance(pkg.get("name"), str):
            return pkg["name"]
        return None

    @property
    def is_package(self) -> bool:
        return self.name is not None

    @property
    def version(self):
        pkg = self.data.get("package")
        return pkg.get("version") if isinstance(pkg, dict) else None

    @property
    def workspace(self) -> dict | None:
        ws = self.data.get("workspace")
        return ws if isinstance(ws, dict) else None

    @property
    def features(self) -> dict[str, list[str]]:
        feats = self.data.get("features")
        if not isinstance(feats, dict):
            return {}
        return {k: [x for x in v if isinstance(x, str)] for k, v in feats.items() if isinstance(v, list)}


def parse(path: Path, data: bytes) -> Manifest:
    """A Manifest from bytes; ManifestError when the TOML is invalid. Positions are computed apart,
    from the file's tree-sitter tree, only for the files a finding is reported in (positions())."""
    try:
        doc = tomllib.loads(data.decode("utf-8", "replace"))
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(str(exc), _line_of(str(exc))) from None
    except RecursionError:  # tomllib recurses on nested arrays and inline tables
        raise ManifestError("arrays or inline tables nested too deeply to read") from None
    m = Manifest(path, doc)
    for section, kind, target in _dependency_tables(doc):
        table = _get(doc, section)
        if not isinstance(table, dict):
            continue
        for key, spec in table.items():
            dep = _dep(key, spec, kind, target, section)
            if dep is None:
                continue
            if kind == "workspace":
                m.workspace_deps[key] = dep
            else:
                m.deps.append(dep)
    return m


def _line_of(message: str) -> int:
    import re

    found = re.search(r"line (\d+)", message)
    return int(found.group(1)) if found else 0


def _get(doc: dict, path: tuple):
    cur = doc
    for k in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(k)
    return cur


def _dependency_tables(doc: dict):
    for name, kind in KINDS.items():
        if name in doc:
            yield (name,), kind, None
    targets = doc.get("target")
    if isinstance(targets, dict):
        for spec, tables in targets.items():
            if isinstance(tables, dict):
                for name, kind in KINDS.items():
                    if name in tables:
                        yield ("target", spec, name), kind, spec
    ws = doc.get("workspace")
    if isinstance(ws, dict) and isinstance(ws.get("dependencies"), dict):
        yield ("workspace", "dependencies"), "workspace", None


def _dep(key: str, spec, kind: str, target, section: tuple) -> Dep | None:
    if isinstance(spec, str):
        return Dep(key, key, kind, target, section, spec, version=spec)
    if not isinstance(spec, dict):
        return None
    feats = spec.get("features", ())
    feats = tuple(f for f in feats if isinstance(f, str)) if isinstance(feats, list) else ()
    df, dkey = None, "default-features"
    for k in ("default-features", "default_features"):
        if isinstance(spec.get(k), bool):
            df, dkey = spec[k], k
            break
    package = spec.get("package") if isinstance(spec.get("package"), str) else key
    version = spec.get("version") if isinstance(spec.get("version"), str) else None
    return Dep(key, package, kind, target, section, spec, version=version, features=feats,
               default_features=df, default_key=dkey, optional=spec.get("optional") is True,
               workspace=spec.get("workspace") is True,
               path=spec.get("path") if isinstance(spec.get("path"), str) else None,
               git=spec.get("git") if isinstance(spec.get("git"), str) else None)


def inherit(dep: Dep, root_dep: Dep) -> Dep:
    """A member's `x = { workspace = true, ... }` merged with [workspace.dependencies] x, the way Cargo
    does: the root's source and version, features added together, `optional` from the member, and
    default-features from the root unless the root turned them off (then the member may turn them on)."""
    if root_dep.default_features is False:
        df = dep.default_features if dep.default_features is not None else False
    else:
        df = None if root_dep.default_features is None else root_dep.default_features
    feats = tuple(dict.fromkeys((*root_dep.features, *dep.features)))
    return replace(dep, package=root_dep.package, version=root_dep.version, features=feats,
                   default_features=df, path=root_dep.path, git=root_dep.git)


# ------------------------------------------------------------------------------------- positions

def positions(root) -> dict:
    """Key path -> ((row, col), (row, col), kind) for every table header, key and key prefix of the
    document, first occurrence first. kind is "table" for a header, else the value's node type
    ("string", "inline_table", ...) for a full key, or "prefix" for a dotted key's prefix. Documents
    are two levels deep (tables hold pairs), so this iterates without recursion."""
    out: dict = {}
    header: tuple = ()
    for node in root.children:
        if node.type in ("table", "table_array_element"):
            key_node = next((c for c in node.named_children
                             if c.type in ("bare_key", "quoted_key", "dotted_key")), None)
            if key_node is None:
                continue
            header = _key_path(key_node)
            if node.type == "table":
                span = (key_node.start_point, key_node.end_point)
                for i in range(1, len(header) + 1):
                    out.setdefault(header[:i], (*span, "table" if i == len(header) else "prefix"))
                pairs = [c for c in node.named_children if c.type == "pair"]
            else:
                pairs = []  # [[bin]] and the like hold no dependencies
        elif node.type == "pair":
            header = ()
            pairs = [node]
        else:
            continue
        for pair in pairs:
            if not pair.named_children:
                continue
            key_node = pair.named_children[0]
            value = pair.named_children[-1] if len(pair.named_children) > 1 else None
            path = (*header, *_key_path(key_node))
            span = (key_node.start_point, key_node.end_point)
            for i in range(len(header) + 1, len(path) + 1):
                kind = (value.type if value is not None else "") if i == len(path) else "prefix"
                out.setdefault(path[:i], (*span, kind))
    return out


def _key_path(node) -> tuple[str, ...]:
    parts: list[str] = []
    stack = [node]
    while stack:  # dotted keys nest to the left: (dotted_key (dotted_key a b) c)
        n = stack.pop()
        if n.type == "dotted_key":
            stack.extend(reversed(n.named_children))
        else:
            parts.append(_key_text(n))
    return tuple(parts)


def _key_text(node) -> str:
    text = node.text.decode("utf-8", "replace")
    if node.type == "quoted_key":
        if text.startswith("'"):
            return text[1:-1]
        try:
            return json.loads(text)
        except ValueError:
            return text[1:-1]
    return text
