"""CL201 native-tls-dependency: Cargo dependencies that build native-tls or OpenSSL.

All Cargo.toml and Cargo.lock files of a scan are one unit. For every Cargo project touched by the
scan (a workspace root, or a lone package), this reads every member manifest once, resolves each
dependency as Cargo does (kind, target, [workspace.dependencies] inheritance, renames, the crate's
own default features, optional dependencies) and looks it up in the knowledge table
(rules/CL201-native-tls-dependency.toml). With a Cargo.lock it also walks the resolved graph from each
member to native-tls / openssl-sys.

One finding per dependency line. When the manifest analysis and a lock chain point at the same line,
the manifest analysis wins the message (it knows the feature path and the line to write instead) and
the chain is appended, its Cargo.lock entries becoming related locations. The lock is the definitive
check in the other direction: a manifest verdict whose dependency reaches neither native-tls nor
openssl-sys in the lock (which Cargo writes with every feature and target on) is dropped.

The lock walk: Cargo writes the lock with every feature of every member on and for every target, so
an edge there is an edge *some* build has. Each package is walked with what is asked of its TLS (YES,
MAYBE, NO): the table says which edges exist only for a native feature (reqwest -> hyper-tls) and
who forwards that request; crates the table does not know pass on MAYBE. An edge taken on MAYBE is a
guess: it is not taken from a package whose TLS request a member's own declaration or opt-in feature
already explains, and a guess is reported only at the declaration closest to the native crate.

Path dependencies: the features a member asks of another local package are followed through local
packages (Cargo's feature unification), and reported at the asking line when they turn native TLS on
that the package's own default build does not.

Where a finding goes: the member's dependency line when that Cargo.toml is a target of the scan; the
[workspace.dependencies] line when the cause is the root's declaration and the root is a target;
else the dependency's [[package]] entry in Cargo.lock when the lock is the target (pre-commit after
`cargo update`); else nowhere (the file is not being checked).
"""

from __future__ import annotations

import os
import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from closelint.cargo import cfg, features
from closelint.cargo import lock as lockfile
from closelint.cargo import manifest as mf
from closelint.cargo import render
from closelint.cargo.catalog import Catalog, Resolved, Row, compile_catalog, version_of
from closelint.cargo.semver import SemverError, lowest, parse_requirement, parse_version

LEVEL_RANK = {"note": 0, "warning": 1, "error": 2}
SINKS = ("native-tls", "openssl-sys")
YES, MAYBE, NO = 0, 1, 2
# A feature name that asks for native TLS (for crates the table does not know).
_NATIVE_NAME = re.compile(r"(native[-_]?tls|openssl|(?<![a-z])(?<!verify-)ssl(?![a-z])|(?<!rus)(?<!rustls-)tls-native)",
                          re.I)


class Span:
    """What SourceFile.location needs of a node."""

    __slots__ = ("start_point", "end_point")

    def __init__(self, start, end):
        self.start_point, self.end_point = tuple(start), tuple(end)


def check(ctx):
    cat = ctx.shared.get(__name__ + ".catalog")
    if cat is None:
        cat = compile_catalog(ctx.catalogs)
        ctx.shared[__name__ + ".catalog"] = cat
    scan = _Scan(ctx, cat)
    if cat.errors and ctx.targets:
        scan.note(ctx.targets[0], "CL201 table: " + "; ".join(cat.errors) + " (rows ignored)", 0)
    yield from scan.run()


# ------------------------------------------------------------------------------------------ model

@dataclass
class Verdict:
    """One active dependency of one member, looked up in the table."""

    member: str                  # manifest path
    dep: mf.Dep                  # as written in the member
    eff: mf.Dep                  # after workspace inheritance
    root_dep: mf.Dep | None      # the [workspace.dependencies] entry it inherits
    root_path: str | None
    row: Row | None
    resolved: Resolved | None
    lock_pkg: object = None      # lock.Package of the dependency
    native: bool = False
    level: str | None = None
    flag: int = MAYBE            # what this declaration asks of the crate's TLS (for the lock walk)
    at_root: bool = False        # the cause is the root's declaration, not the member's line
    causes: list = field(default_factory=list)  # (kind, detail)
    own_paths: dict = field(default_factory=dict)  # native feature -> path through own [features]
    line_native: list = field(default_factory=list)  # native features written on the line
    defaults_native: bool = False
    optional_path: tuple = ()    # how the crate's own default features switch an optional dep on
    unified: bool = False        # a dev-dependency whose features resolver 1 applies to the normal build
    maybe_chain: bool = False    # its lock chain rests on a guess about a crate the table lacks
    context: str | None = None   # "support": a note because the member is a test / example crate


@dataclass
class Report:
    file: object                 # SourceFile
    span: Span
    level: str
    parts: list                  # message parts
    related: list = field(default_factory=list)
    members: list = field(default_factory=list)


class _Scan:
    def __init__(self, ctx, cat: Catalog):
        self.ctx = ctx
        self.cat = cat
        self.opts = ctx.options
        self.files = {_norm(f.path): f for f in ctx.files}
        self.missing: set = set()
        self.local_memo: dict = {}
        self.current_lock = None
        self.manifests: dict[str, mf.Manifest | None] = {}
        self.locks: dict[str, lockfile.Lock | None] = {}
        self.positions: dict[str, dict] = {}
        self.reports: dict[tuple, Report] = {}
        self.noted: set = set()
        self.roles: dict[str, str] = {}  # manifest path -> "backend" | "support"
        self.backend_words = [_words(w) for w in self.opts.get("backend-words", ()) if isinstance(w, str)]
        self.support_words = {w.lower() for w in self.opts.get("support-words", ()) if isinstance(w, str)}

    # ------------------------------------------------------------------ files
    def source(self, path: str):
        f = self.files.get(path)
        if f is None and path not in self.missing:
            f = self.ctx.read(Path(path)) if self.ctx.fs.is_file(path) else None
            if f is None:
                self.missing.add(path)
            else:
                self.files[path] = f
        return f

    def note(self, src, message: str, line: int):
        if src.path in self.noted:
            return
        self.noted.add(src.path)
        src.note(message, line=line)

    def manifest(self, path: str) -> mf.Manifest | None:
        return self._parsed(self.manifests, path, mf.parse)

    def lock(self, path: str) -> lockfile.Lock | None:
        return self._parsed(self.locks, path, lockfile.parse)

    def _parsed(self, memo: dict, path: str, parse):
        """A file read once and parsed once; invalid TOML is named in one notification."""
        if path not in memo:
            src = self.source(path)
            value = None
            if src is not None:
                try:
                    value = parse(Path(path), src.data)
                except mf.ManifestError as exc:
                    if src.is_target:
                        self.note(src, f"invalid TOML: {exc}; CL201 skipped this file", exc.line)
            memo[path] = value
        return memo[path]

    def form(self, path: str, dep: mf.Dep) -> str:
        """How a dependency is written: "string", "inline", "table" ([dependencies.x]) or "dotted"."""
        self.position(path, dep.path_key)
        p = self.positions.get(path, {}).get(dep.path_key)
        if p is None:
            return "inline"
        return {"table": "table", "string": "string", "inline_table": "inline"}.get(p[2], "dotted")

    def position(self, path: str, key: tuple):
        if path not in self.positions:
            src = self.source(path)
            self.positions[path] = mf.positions(src.tree.root_node) if src is not None else {}
        p = self.positions[path].get(tuple(key))
        return Span(p[0], p[1]) if p else None

    # ------------------------------------------------------------------ projects
    def root_of(self, path: str) -> str | None:
        """The workspace root manifest of the package at path (itself for a root or a lone package)."""
        m = self.manifest(path)
        if m is None:
            return None
        if m.workspace is not None:
            return path
        pkg = m.data.get("package") if isinstance(m.data.get("package"), dict) else {}
        folder = os.path.dirname(path)
        if isinstance(pkg.get("workspace"), str):
            cand = _norm(os.path.join(folder, pkg["workspace"], "Cargo.toml"))
            cm = self.manifest(cand)
            return cand if cm is not None and cm.workspace is not None else path
        d = folder
        while True:
            parent = os.path.dirname(d)
            if parent == d:
                return path
            d = parent
            cand = os.path.join(d, "Cargo.toml")
            if self.source(cand) is None:
                continue
            cm = self.manifest(cand)
            if cm is None or cm.workspace is None:
                continue
            rel = os.path.relpath(folder, d).replace(os.sep, "/")
            excluded = [e.strip("/") for e in cm.workspace.get("exclude", []) if isinstance(e, str)]
            if any(rel == e or rel.startswith(e + "/") for e in excluded):
                return path
            return cand

    def members(self, root: str) -> list[str]:
        """Manifest paths of the workspace's packages: the root package, `members` globs, and path
        dependencies inside the workspace folder."""
        m = self.manifest(root)
        if m is None:
            return []
        if m.workspace is None:
            return [root]
        folder = os.path.dirname(root)
        out = [root] if m.is_package else []
        pats = m.workspace.get("members", [])
        excluded = {_norm(os.path.join(folder, e)) for e in m.workspace.get("exclude", []) if isinstance(e, str)}
        for pat in pats if isinstance(pats, list) else []:
            if not isinstance(pat, str):
                continue
            if any(ch in pat for ch in "*?["):
                dirs = self.ctx.fs.glob(Path(folder), pat)
            else:
                dirs = [Path(folder) / pat]
            for d in dirs:
                cand = _norm(str(d / "Cargo.toml"))
                if _norm(str(d)) in excluded or cand in out:
                    continue
                if self.source(cand) is not None:
                    out.append(cand)
        # path dependencies inside the workspace are members too
        queue = list(out)
        while queue:
            cur = queue.pop()
            cm = self.manifest(cur)
            if cm is None:
                continue
            for dep in [*cm.deps, *cm.workspace_deps.values()]:
                if dep.path is None:
                    continue
                cand = _norm(os.path.join(os.path.dirname(cur), dep.path, "Cargo.toml"))
                if cand in out or not cand.startswith(folder + os.sep):
                    continue
                if self.source(cand) is not None and self.manifest(cand) is not None:
                    out.append(cand)
                    queue.append(cand)
        return out

    # ------------------------------------------------------------------ run
    def run(self):
        targets = [_norm(f.path) for f in self.ctx.targets]
        roots: dict[str, None] = {}
        for t in targets:
            name = os.path.basename(t)
            if name == "Cargo.toml":
                if self.manifest(t) is None:
                    continue
                r = self.root_of(t)
                if r is not None:
                    roots.setdefault(r)
            elif name == "Cargo.lock":
                if self.lock(t) is None:
                    continue
                r = _norm(os.path.join(os.path.dirname(t), "Cargo.toml"))
                if self.manifest(r) is not None:
                    roots.setdefault(self.root_of(r) or r)
        covered: set = set()
        for root in roots:
            covered.update(self.project(root))
        for t in targets:  # a package its workspace does not list (a test fixture, an excluded crate)
            if os.path.basename(t) == "Cargo.toml" and t not in covered and self.manifest(t) is not None \
                    and self.manifest(t).is_package:
                covered.update(self.project(self.root_of(t) or t, only=[t]))
        for rep in sorted(self.reports.values(), key=lambda r: (str(r.file.path), r.span.start_point)):
            yield self.ctx.finding(rep.file, rep.span, _compose(rep), level=rep.level,
                                   related=[(f, s, m) for f, s, m in rep.related[:12]])

    def project(self, root: str, only=None) -> list[str]:
        """Analyse one workspace (or lone package); returns the manifests it covered."""
        members = only if only is not None else self.members(root)
        lock_path = _norm(os.path.join(os.path.dirname(root), "Cargo.lock"))
        lk = self.lock(lock_path) if self.opts.get("use-lock", True) and self.source(lock_path) else None
        lock_src = self.source(lock_path) if lk is not None else None
        root_m = self.manifest(root)
        self.current_lock, self.local_memo = lk, {}
        self.classify(root, members)
        verdicts: dict[str, list[Verdict]] = {}
        member_pkgs: dict[str, object] = {}
        for path in members:
            m = self.manifest(path)
            if m is None or not m.is_package:
                continue
            pkg = _member_package(lk, m, root_m) if lk is not None else None
            member_pkgs[path] = pkg
            verdicts[path] = self.analyse(path, m, root, root_m, lk, pkg)
        flagged: set = set()
        chains = self.lock_chains(lk, verdicts, member_pkgs) \
            if lk is not None and any(p is not None for p in member_pkgs.values()) else {}
        for path, vs in verdicts.items():
            if self.roles.get(path) == "backend":
                continue  # an OpenSSL / native-TLS backend crate: linking it is its purpose
            for v in vs:
                chain = chains.get((path, id(v)))
                if v.native and v.level is not None:
                    if lk is not None and member_pkgs.get(path) is not None and v.lock_pkg is not None \
                            and chain is None and not self._reaches_sink(lk, v.lock_pkg):
                        continue  # the lock, which has every feature on, never reaches native TLS
                    self.emit_verdict(v, chain, lk, lock_src)
                    flagged.add(v.eff.package)
                    if v.lock_pkg is not None:
                        flagged.update(_descendants(lk, v.lock_pkg))
                elif chain is not None and self.opts.get("lock-chains", True):
                    self.emit_chain(v, chain, lk, lock_src)
        self.member_features(verdicts, members, flagged)
        return members

    # ------------------------------------------------------------------ what a member is for
    def classify(self, root: str, members: list[str]):
        """Roles of the project's members: "backend" for a crate whose purpose is OpenSSL / native TLS
        (its name says so, or every other member takes it only through an opt-in feature named for
        native TLS), "support" for test, example and tooling crates (by name or folder)."""
        packages = [p for p in members if self.manifest(p) is not None and self.manifest(p).is_package]
        for path in packages:
            m = self.manifest(path)
            lib = m.data.get("lib") if isinstance(m.data.get("lib"), dict) else {}
            names = [m.name, *([lib["name"]] if isinstance(lib.get("name"), str) else [])]
            if any(_has_words(_words(n), w) for n in names for w in self.backend_words):
                self.roles[path] = "backend"
        # opt-in backends: every member that depends on it declares it optional, off by default, and
        # switched on only by features named for native TLS
        takers: dict[str, list] = {}
        root_m = self.manifest(root)
        for path in packages:
            m = self.manifest(path)
            for d in m.deps:
                effective = _effective(d, path, root, root_m)
                if effective is None:
                    continue
                eff, base = effective
                if eff.path is not None:
                    sub = _norm(os.path.join(base, eff.path, "Cargo.toml"))
                    takers.setdefault(sub, []).append((m, d))
        for sub, deps in takers.items():
            if sub in packages and sub not in self.roles and all(_opt_in_native(m, d) for m, d in deps):
                self.roles[sub] = "backend"
        base = self.outermost(os.path.dirname(root))
        for path in packages:
            if path in self.roles:
                continue
            rel = os.path.relpath(os.path.dirname(path), base).replace(os.sep, "/")
            words = set(_words(self.manifest(path).name))
            for part in rel.split("/") if rel != "." and not rel.startswith("..") else ():
                words.update(_words(part))
            if words & self.support_words:
                self.roles[path] = "support"

    def outermost(self, folder: str) -> str:
        """The outermost folder above `folder` (itself included) that holds a Cargo.toml, without
        leaving the repository (a folder with .git) or climbing more than 16 levels: the base the
        folders of a member are read from (test_runner/pg_clients/rust/tokio-postgres is a test
        project although it is a workspace of its own)."""
        best = folder
        d = folder
        for _ in range(16):
            if self.ctx.fs.exists(os.path.join(d, ".git")):
                break
            parent = os.path.dirname(d)
            if parent == d:
                break
            d = parent
            if self.ctx.fs.is_file(os.path.join(d, "Cargo.toml")):
                best = d
        return best

    def member_level(self, path: str, level: str | None, context: str | None):
        """(level, context) for a finding of the member at path: a support crate's are notes."""
        if level is not None and level != "note" and self.roles.get(path) == "support":
            return "note", "support"
        return level, context

    # ------------------------------------------------------------------ manifest analysis
    def analyse(self, path, m: mf.Manifest, root, root_m, lk, pkg) -> list[Verdict]:
        res = features.resolve(m)
        # With Cargo's feature resolver 1, a dev-dependency's features also apply to the normal build
        # of a crate that is a normal dependency too.
        v1 = _resolver(root_m if root_m is not None else m) == "1"
        normal = {d.package if not d.workspace or root_m is None or d.key not in root_m.workspace_deps
                  else root_m.workspace_deps[d.key].package for d in m.deps if d.kind != "dev"}
        out = []
        for d in m.deps:
            root_dep = None
            eff = d
            if d.workspace:
                root_dep = root_m.workspace_deps.get(d.key) if root_m is not None else None
                if root_dep is None:
                    continue
                eff = mf.inherit(d, root_dep)
            if eff.optional and d.key not in res.deps_on:
                continue  # switched on by no default feature: opt-in
            if eff.kind == "dev" and not self.opts.get("dev-dependencies", True):
                continue
            v = Verdict(path, d, eff, root_dep, root if root_dep is not None else None, None, None)
            if eff.optional:
                v.optional_path = res.deps_on.get(d.key, ())
            if pkg is not None:
                v.lock_pkg = _dep_package(lk, pkg, eff)
            if eff.path is not None:
                v.flag = NO  # a local package (workspace member or path dependency): analysed on its own
                out.append(v)
                continue
            locked = v.lock_pkg.version if v.lock_pkg is not None else None
            row, resolved = version_of(self.cat, eff.package, eff.version, locked)
            v.row, v.resolved = row, resolved
            if row is None:
                if self.cat.is_not_native(eff.package, resolved.version if resolved else None):
                    v.flag = NO
                else:
                    v.flag = _unknown_flag(eff, res.dep_features.get(d.key, {}))
                out.append(v)
                continue
            self.judge(v, res)
            if v.level == "note" and d.kind == "dev" and v1 and eff.package in normal \
                    and cfg.platforms(d.target) & v.row.platforms & cfg.OPENSSL_LIKE:
                v.level, v.unified = self._native_level(v.row), True
            v.level, v.context = self.member_level(path, v.level, None)
            out.append(v)
        return out

    def judge(self, v: Verdict, res):
        row, eff, d = v.row, v.eff, v.dep
        own = res.dep_features.get(d.key, {})
        line_feats = list(eff.features)
        defaults_on = eff.default_features is not False or "default" in own or "default" in line_feats
        if row.always:
            v.native = True
            v.causes.append(("always", None))
        v.line_native = [f for f in line_feats if f in row.native_features]
        v.own_paths = {f: p for f, p in own.items() if f in row.native_features}
        v.defaults_native = defaults_on and row.default_native and not row.always
        if v.line_native or v.own_paths or v.defaults_native:
            v.native = True
        v.flag = YES if v.native else NO
        if not v.native:
            return
        # whose declaration is it: the member's line or the root's [workspace.dependencies] entry
        if v.root_dep is not None and not row.always:
            member_feats = [f for f in d.features if f in row.native_features]
            member_defaults = v.defaults_native and v.root_dep.default_features is False
            if not member_feats and not member_defaults and not v.own_paths:
                v.at_root = True
        # level: the dependency's platforms, where this crate links OpenSSL
        dep_pf = cfg.platforms(d.target)
        if dep_pf & row.platforms & cfg.OPENSSL_LIKE:
            level = self._native_level(row)
        elif dep_pf & cfg.APPLE_WINDOWS:
            level = "note"
        else:
            level = None
        if level is not None and d.kind == "dev":
            level = "note"
        v.level = level

    def _native_level(self, row: Row) -> str:
        """Where the crate links OpenSSL: error, or the no-rustls level when no release of it has a
        rustls backend (only another crate avoids OpenSSL)."""
        if row.no_rustls:
            level = self.opts.get("no-rustls-level", "warning")
            return level if level in LEVEL_RANK else "warning"
        return "error"

    # ------------------------------------------------------------------ emitting
    def place(self, v: Verdict, lk, lock_src):
        """(SourceFile, Span, where-text) for a verdict's finding, or None."""
        msrc = self.source(v.member)
        if v.at_root and v.root_path is not None:
            rsrc = self.source(v.root_path)
            if rsrc is not None and rsrc.is_target:
                span = self.position(v.root_path, v.root_dep.path_key)
                if span is not None:
                    return rsrc, span
        if msrc is not None and msrc.is_target:
            span = self.position(v.member, v.dep.path_key)
            if span is not None:
                return msrc, span
        if lock_src is not None and lock_src.is_target and v.lock_pkg is not None and v.lock_pkg.line:
            line = v.lock_pkg.line - 1
            text = lock_src.lines[line] if line < len(lock_src.lines) else b""
            return lock_src, Span((line, 0), (line, len(text.rstrip(b"\r"))))
        return None

    def report(self, where, level, parts, related, member):
        src, span = where
        related = [r for r in related if not (r[0] is src and r[1].start_point[0] == span.start_point[0])]
        key = (str(src.path), span.start_point[0])
        rep = self.reports.get(key)
        if rep is None:
            rep = self.reports[key] = Report(src, span, level, parts, list(related), [member])
            return rep
        if LEVEL_RANK[level] > LEVEL_RANK[rep.level]:
            rep.level, rep.parts = level, parts
        if member not in rep.members:
            rep.members.append(member)
        for r in related:
            if r not in rep.related:
                rep.related.append(r)
        return rep

    def emit_verdict(self, v: Verdict, chain, lk, lock_src):
        where = self.place(v, lk, lock_src)
        if where is None:
            return
        src, _ = where
        parts = self.verdict_message(v, src)
        related = []
        if v.own_paths:
            first = next(iter(v.own_paths.values()))
            span = self.position(v.member, ("features", first[0]))
            msrc = self.source(v.member)
            if span is not None and msrc is not None:
                related.append((msrc, span, f"[features] {first[0]} turns it on"))
        if v.root_dep is not None and str(src.path) != v.root_path:
            rsrc = self.source(v.root_path)
            span = self.position(v.root_path, v.root_dep.path_key)
            if rsrc is not None and span is not None:
                related.append((rsrc, span, "[workspace.dependencies] entry it inherits"))
        if chain is not None:
            parts.append(("chain", _chain_text(chain)))
            related += self.chain_related(lk, chain)
        member_name = self.manifest(v.member).name
        if v.root_path is not None and str(src.path) == v.root_path and v.root_path != v.member:
            parts.insert(0, ("inherited", None))
        elif str(src.path) != v.member:
            parts.insert(0, ("member", (member_name, _rel(v.member, str(src.path)))))
        self.report(where, v.level, parts, related, member_name)

    def emit_chain(self, v: Verdict, chain, lk, lock_src):
        kind, target = v.dep.kind, v.dep.target
        sink = next((p for p in chain if p.name == "native-tls"), chain[-1])
        sink_row = self.cat.row(sink.name, _ver(sink.version))
        dep_pf = cfg.platforms(target)
        pf = sink_row.platforms if sink_row is not None else cfg.ALL
        if dep_pf & pf & cfg.OPENSSL_LIKE:
            level = "error"
        elif dep_pf & cfg.APPLE_WINDOWS:
            level = "note"
        else:
            return
        if kind == "dev":
            level = "note"
        level, context = self.member_level(v.member, level, None)
        where = self.place(v, lk, lock_src)
        if where is None:
            return
        src, _ = where
        pkgs = [p for p in chain[1:]]
        culprit = _culprit(pkgs, self.cat)
        chain_rows = [(p.name, self.cat.row(p.name, _ver(p.version))) for p in pkgs]
        if v.row is None and v.flag == YES:
            asked = [f for f in [*v.eff.features] if _NATIVE_NAME.search(f) and "rustls" not in f]
            culprit = ("asked", asked)
        parts = [("lock", (v.eff.package, v.lock_pkg.version if v.lock_pkg else "", _chain_text(chain),
                           culprit, v.maybe_chain, chain_rows)),
                 ("consequence", (sink_row, level))]
        if level == "note":
            parts.append(("context", context or ("dev" if kind == "dev" else "platform")))
        member_name = self.manifest(v.member).name
        if str(src.path) != v.member:
            parts.insert(0, ("member", (member_name, _rel(v.member, str(src.path)))))
        self.report(where, level, parts, self.chain_related(lk, chain), member_name)

    def chain_related(self, lk, chain):
        lsrc = self.source(str(lk.path)) if lk is not None else None
        out = []
        if lsrc is None:
            return out
        for p in chain[1:]:
            if p.line:
                text = lsrc.lines[p.line - 1] if p.line - 1 < len(lsrc.lines) else b""
                out.append((lsrc, Span((p.line - 1, 0), (p.line - 1, len(text.rstrip(b"\r")))),
                            f"Cargo.lock: {p.name} {p.version}"))
        return out

    # ------------------------------------------------------------------ messages
    def verdict_message(self, v: Verdict, src) -> list:
        row, eff, d = v.row, v.eff, v.dep
        parts = [("crate", (d.key, eff.package, v.resolved))]
        if row.always:
            parts.append(("always", (row, eff.package)))
        else:
            if v.defaults_native and (v.at_root or (not v.line_native and not v.own_paths)):
                dflt = self.cat.default_features(eff.package, v.resolved.version) or []
                which = [f for f in dflt if f in row.native_features]
                rustls_listed = [f for f in eff.features if "rustls" in f]
                parts.append(("defaults", (which, rustls_listed, eff.default_key,
                                           v.root_dep is not None and v.at_root,
                                           d.workspace and d.default_features is False)))
            elif v.defaults_native:
                parts.append(("defaults-too", None))
            if v.line_native:
                parts.append(("features", (v.line_native, v.at_root)))
            if v.own_paths:
                parts.append(("own", v.own_paths))
        if d.optional and v.optional_path and not v.own_paths:
            parts.append(("optional-on", v.optional_path))
        parts.append(("consequence", (row, v.level)))
        if v.unified:
            parts.append(("unified", None))
        if v.level == "note":
            parts.append(("context", v.context or ("dev" if d.kind == "dev" else "platform")))
        if v.resolved.caveat:
            parts.append(("caveat", v.resolved.caveat))
        parts.append(("fix", self.fix(v, src)))
        return parts

    def fix(self, v: Verdict, src) -> str:
        row, eff = v.row, v.eff
        if row.no_rustls:
            return _no_rustls_fix(eff.package, row)
        if row.always:
            up = self.cat.upgrade_to(eff.package, v.resolved.version) if v.resolved.version else None
            if up is not None and not row.instead:
                return f"Upgrade to {eff.package} {lowest(up.range)} or later and use its `{up.rustls_feature}` feature."
            return f"Use instead: {row.instead}." if row.instead else \
                f"{eff.package} has no rustls backend in this version."
        at_root = v.at_root and v.root_path is not None
        written = v.root_dep if at_root else v.dep
        fix = []
        if v.own_paths:
            fix.append(self.own_fix(v))
        if at_root:
            needs_line = v.defaults_native or bool(v.line_native)
        else:  # a member that inherits can only change its own features, or defaults the root left off
            needs_line = bool(v.line_native) or (v.defaults_native and (
                not v.dep.workspace or v.dep.default_features is True))
        if needs_line:
            fix.append(self.line_fix(v, written, at_root, src))
        return " ".join(x for x in fix if x)

    def own_fix(self, v: Verdict) -> str:
        m = self.manifest(v.member)
        path = next(iter(v.own_paths.values()))
        # path: root feature -> ... -> culprit feature -> "key/native-feature"
        culprit = path[-2] if len(path) >= 2 else path[0]
        parent = path[-3] if len(path) >= 3 else None
        rustls = v.row.rustls_feature
        alt = None
        for name, vals in m.features.items():
            if name == culprit:
                continue
            for x in vals:
                k, _, f = x.partition("/")
                if k.rstrip("?") == v.dep.key and "rustls" in f and f not in v.row.native_features:
                    alt = name
                    break
            if alt:
                break
        target = f"`{v.dep.key}/{rustls}`" if rustls else "a rustls backend"
        if parent is None:
            return f"Stop enabling `{path[-1]}` from feature `{culprit}`; use {target} instead."
        where = "this crate's `default` features" if parent == "default" else f"feature `{parent}`"
        if alt and alt in m.features.get(parent, ()):
            return f"Take `\"{culprit}\"` out of {where} (`{alt}` is already there) and keep it opt-in."
        if alt:
            return f"Put `\"{alt}\"` in place of `\"{culprit}\"` in {where} (keep `{culprit}` opt-in)."
        return f"Take `\"{culprit}\"` out of {where} and add a feature that turns on {target} instead."

    def line_fix(self, v: Verdict, written: mf.Dep, at_root: bool, src) -> str:
        row, eff = v.row, v.eff
        version = v.resolved.version
        spec = dict(written.spec) if isinstance(written.spec, dict) else {"version": written.spec}
        feats = [f for f in written.features]
        removed = [f for f in feats if f in row.native_features]
        feats = [f for f in feats if f not in row.native_features]
        turn_off = v.defaults_native and (written.default_features is not False)
        if v.dep.workspace and not at_root and v.root_dep is not None and v.root_dep.default_features is not False:
            turn_off = False  # a member cannot turn off defaults the root keeps on
        added: list[str] = []
        lost: list[str] = []
        unknown_defaults = False
        has_rustls = any("rustls" in f for f in feats)
        want_rustls = bool(removed) or turn_off
        keeps_default_rustls = row.rustls_by_default and not turn_off and eff.default_features is not False
        if want_rustls and not keeps_default_rustls and not has_rustls:
            if turn_off and row.rustls_defaults:
                added.append(row.rustls_defaults)
            else:
                for f in removed:
                    r = row.replace.get(f) or row.rustls_feature
                    if r and r not in added:
                        added.append(r)
                if turn_off and row.rustls_feature and row.rustls_feature not in added:
                    added.append(row.rustls_feature)
        if turn_off:
            for f in row.rustls_extra:
                if f not in feats and f not in added:
                    added.append(f)
            if not row.rustls_defaults:
                dflt = self.cat.default_features(eff.package, version)
                if dflt is None:
                    unknown_defaults = True
                else:
                    for f in dflt:
                        if f in row.native_features or f == "default" or f in feats or f in added:
                            continue
                        if "/" in f:
                            lost.append(f)
                            continue
                        added.append(f)
        no_rustls = want_rustls and not added and not has_rustls and not keeps_default_rustls
        if no_rustls:
            up = self.cat.upgrade_to(eff.package, version) if version is not None else None
            if up is not None:
                return (f"{eff.package} {v.resolved.text} has no rustls backend: upgrade to {eff.package} "
                        f"{lowest(up.range)} or later and use `default-features = false` with its "
                        f"`{up.rustls_feature}` feature.")
            if row.no_rustls:
                return _no_rustls_fix(eff.package, row)
            return f"Use instead: {row.instead}." if row.instead else f"{eff.package} has no rustls backend."
        new_feats = feats + [f for f in added if f not in feats]
        if turn_off:
            spec = _set_key(spec, written.default_key, False, after=("version", "package", "path", "git"))
        if "features" in spec or new_feats:
            if new_feats:
                spec = _set_key(spec, "features", new_feats)
            else:
                spec.pop("features", None)
        line = render.dependency_line(written.key, spec)
        section = ".".join(render.key(k) for k in written.section)
        form = self.form(v.root_path if at_root else v.member, written)
        if form == "table":
            changes = []
            if turn_off:
                changes.append(f"`{written.default_key} = false`")
            changes.append(f"`features = {render.value(new_feats)}`" if new_feats else "no `features`")
            text = f"Under `[{section}.{render.key(written.key)}]` write {' and '.join(changes)}"
        else:
            where = ""
            if at_root and str(src.path) != v.root_path:
                where = f" in [workspace.dependencies] of {_rel(v.root_path, str(src.path))}"
            text = f"Write instead{where}: `{line}`"
        if lost:
            text += f" (its defaults also set {', '.join(lost)}: add what you rely on)"
        if unknown_defaults and turn_off:
            text += " and re-add the other default features you use"
        return text + "."

    # ------------------------------------------------------------------ member features
    def local_native(self, path: str, requested, default: bool, depth: int = 0) -> dict:
        """Native dependencies that a build of the local package at path turns on when a dependent asks
        it for `requested` (and its defaults when default), following other local packages (path
        dependencies) the way Cargo passes features on:
        {(manifest, dep key): (local crates on the way, the dependency, row, what turns it on)}."""
        key = (path, frozenset(requested), default)
        if key in self.local_memo:
            return self.local_memo[key]
        self.local_memo[key] = {}  # a cycle of path dependencies ends here
        m = self.manifest(path)
        if m is None or not m.is_package or depth > 32:
            return {}
        root = self.root_of(path)
        root_m = self.manifest(root) if root is not None else None
        res = features.resolve(m, requested, default)
        out: dict = {}
        for od in m.deps:
            if od.kind == "dev":
                continue
            effective = _effective(od, path, root, root_m)
            if effective is None:
                continue
            eff, base = effective
            if eff.optional and od.key not in res.deps_on:
                continue
            feats = set(eff.features) | set(res.dep_features.get(od.key, {}))
            dflt = eff.default_features is not False or "default" in feats
            if eff.path is not None:
                sub = _norm(os.path.join(base, eff.path, "Cargo.toml"))
                for k, (hops, found, row, what) in self.local_native(
                        sub, tuple(sorted(feats - {"default"})), dflt, depth + 1).items():
                    out.setdefault(k, ([m.name, *hops], found, row, what))
                continue
            locked = self.locked_version(eff.package, eff.version)
            row, _ = version_of(self.cat, eff.package, eff.version, locked)
            if row is None:
                continue
            nf = sorted(feats & row.native_features)
            if row.always or nf or (dflt and row.default_native):
                what = "" if row.always else (", ".join(f"`{f}`" for f in nf) if nf else "its default features")
                out[(path, od.key)] = ([m.name], od, row, what)
        self.local_memo[key] = out
        return out

    def locked_version(self, name: str, requirement: str | None) -> str | None:
        """The version of a crate in the current project's Cargo.lock, when that is unambiguous."""
        lk = self.current_lock
        if lk is None:
            return None
        cands = [p.version for p in lk.by_name.get(name, ()) if not p.is_local]
        if len(cands) > 1 and requirement:
            try:
                rng = parse_requirement(requirement)
                cands = [c for c in cands if _ver(c) is not None and _ver(c) in rng]
            except SemverError:
                pass
        return cands[0] if len(cands) == 1 else None

    def member_features(self, verdicts, members, flagged=frozenset()):
        """A member asking another local package (a path dependency) for features that turn native TLS
        on inside it, possibly several path dependencies down. What that package's own default build
        turns on is reported in its own manifest, not here."""
        for path, vs in verdicts.items():
            msrc = self.source(path)
            if msrc is None or not msrc.is_target or self.roles.get(path) == "backend":
                continue
            m = self.manifest(path)
            res = features.resolve(m)
            root = self.root_of(path)
            for v in vs:
                if v.eff.path is None:
                    continue
                base = os.path.dirname(root if v.dep.workspace and root is not None else path)
                sub = _norm(os.path.join(base, v.eff.path, "Cargo.toml"))
                feats = set(v.eff.features) | set(res.dep_features.get(v.dep.key, {}))
                dflt = v.eff.default_features is not False or "default" in feats
                asked = self.local_native(sub, tuple(sorted(feats - {"default"})), dflt)
                own = self.local_native(sub, (), True)
                for k, (hops, od, row, what) in asked.items():
                    # A backend crate reports nothing itself: the first member on the way that turns
                    # it on in its default build does (here, when every crate on the way is one).
                    backend = k in own and all(self.roles.get(p) == "backend" for p in self._hop_paths(sub, hops))
                    if (k in own and not backend) or od.package in flagged:
                        continue  # reported in its own manifest, or built anyway by a reported dependency
                    dep_pf = cfg.platforms(v.dep.target) & cfg.platforms(od.target)
                    if dep_pf & row.platforms & cfg.OPENSSL_LIKE:
                        level = self._native_level(row)
                    elif dep_pf & cfg.APPLE_WINDOWS:
                        level = "note"
                    else:
                        continue
                    if v.dep.kind == "dev":
                        level = "note"
                    level, context = self.member_level(path, level, None)
                    span = self.position(path, v.dep.path_key)
                    if span is None:
                        continue
                    related = []
                    osrc = self.source(k[0])
                    ospan = self.position(k[0], od.path_key)
                    if osrc is not None and ospan is not None:
                        related.append((osrc, ospan, f"{od.key} in {hops[-1]}"))
                    own_paths = res.dep_features.get(v.dep.key, {})
                    requested = sorted(f for f in feats if f != "default")
                    # the features that matter: those that turn it on by themselves
                    relevant = [f for f in requested if k in self.local_native(sub, (f,), False)] or requested
                    via = next((" -> ".join(own_paths[f]) for f in relevant if f in own_paths), "")
                    alt = _rustls_sibling(self.manifest(sub), relevant)
                    if backend:
                        on = " -> ".join(v.optional_path) if v.dep.optional and v.optional_path else ""
                        parts = [("backend-crate", (v.dep.key, hops, od.package, on))]
                    else:
                        parts = [("member-feature", (v.dep.key, hops, od.package, what, relevant, alt, via))]
                    parts.append(("consequence", (row, level)))
                    if level == "note":
                        parts.append(("context", context or ("dev" if v.dep.kind == "dev" else "platform")))
                    self.report((msrc, span), level, parts, related, m.name)

    def _hop_paths(self, sub: str, hops: list) -> list[str]:
        """Manifest paths of the local crates named in hops (sub first), as far as they are found."""
        out = [sub]
        cur = sub
        for name in hops[1:]:
            m = self.manifest(cur)
            nxt = None
            for d in (m.deps if m is not None else ()):
                if d.package == name or d.key == name:
                    r = self.root_of(cur) if d.workspace else None
                    effective = _effective(d, cur, r, self.manifest(r) if r is not None else None)
                    if effective is None:
                        continue
                    eff, base = effective
                    if eff.path is not None:
                        nxt = _norm(os.path.join(base, eff.path, "Cargo.toml"))
                        break
            if nxt is None:
                break
            out.append(nxt)
            cur = nxt
        return out

    # ------------------------------------------------------------------ the lock walk
    def _reaches_sink(self, lk, pkg) -> bool:
        key = (str(lk.path), "reach")
        reach = self.ctx.shared.get((__name__, key))
        if reach is None:
            reach = _plain_reach(lk)
            self.ctx.shared[(__name__, key)] = reach
        return pkg.index in reach

    def lock_chains(self, lk, verdicts, member_pkgs) -> dict:
        """(member path, id(verdict)) -> chain [member pkg, dep pkg, ..., sink] for the shortest chain
        of each culprit edge per member."""
        g = _Graph(lk, self.cat)
        starts = []
        for path, vs in verdicts.items():
            if member_pkgs.get(path) is None:
                continue
            for v in vs:
                if v.lock_pkg is not None and not v.lock_pkg.is_local:
                    starts.append((path, v))
        # explained: packages whose TLS request some member's default build makes for sure,
        # or that a member's opt-in feature may turn on
        g.explain([(v.lock_pkg.index, v.flag) for _, v in starts])
        g.opt_in(self.opt_in_packages(lk, verdicts, member_pkgs))
        g.distances()
        out = {}
        picked = []
        for path, vs in verdicts.items():
            pkg = member_pkgs.get(path)
            if pkg is None:
                continue
            best: dict = {}
            for v in vs:
                if v.lock_pkg is None or v.lock_pkg.is_local:
                    continue
                found = g.chain(v.lock_pkg.index, v.flag)
                if found is None:
                    continue
                chain_idx, maybe = found
                chain = [pkg, *(lk.packages[i] for i in chain_idx)]
                key = (chain[-2].index, chain[-1].index) if len(chain) > 2 else (pkg.index, chain[-1].index)
                rank = (maybe, len(chain), 0 if v.native else 1, v.dep.kind != "normal")
                if key not in best or rank < best[key][0]:
                    best[key] = (rank, v, chain, maybe)
            chosen = {}
            for rank, v, chain, maybe in best.values():
                if id(v) not in chosen or rank < chosen[id(v)][0]:
                    chosen[id(v)] = (rank, v, chain, maybe)
            for rank, v, chain, maybe in chosen.values():
                if maybe and v.native:
                    continue  # the verdict explains it without guessing
                picked.append((path, v, chain, maybe))
        # A guessed chain is kept only where it is the shortest guess into the same native crate edge:
        # the member that declares the crate closest to it is the likelier cause (one workspace member
        # asking pq-sys for `bundled` does not make every diesel user link OpenSSL).
        shortest: dict = {}
        for path, v, chain, maybe in picked:
            if maybe:
                e = g.culprit_edge(chain)
                shortest[e] = min(shortest.get(e, len(chain)), len(chain))
        for path, v, chain, maybe in picked:
            if maybe and len(chain) > shortest[g.culprit_edge(chain)]:
                continue
            v.maybe_chain = maybe
            out[(path, id(v))] = _extend(lk, chain)
        return out

    def opt_in_packages(self, lk, verdicts, member_pkgs) -> set:
        """Lock packages whose TLS some member's non-default feature may turn on."""
        out = set()
        for path, pkg in member_pkgs.items():
            if pkg is None:
                continue
            m = self.manifest(path)
            res_def = features.resolve(m)
            res_all = features.all_features(m)
            for d in m.deps:
                extra = set(res_all.dep_features.get(d.key, {})) - set(res_def.dep_features.get(d.key, {}))
                newly = d.optional and d.key in res_all.deps_on and d.key not in res_def.deps_on
                if not extra and not newly:
                    continue
                dp = _dep_package(lk, pkg, d)
                if dp is None:
                    continue
                if newly or any(_NATIVE_NAME.search(f) for f in extra):
                    out.add(dp.index)
                    continue
                row = self.cat.row(dp.name, _ver(dp.version))
                if row is not None and extra & row.native_features:
                    out.add(dp.index)
        return out


# ------------------------------------------------------------------------------------ lock graph

class _Graph:
    """The lock's packages as states (package, what is asked of its TLS: YES / MAYBE / NO).

    Edges follow the lock, except where the table says an edge exists only for a native feature
    (reqwest -> hyper-tls) and nobody asked for one. An edge taken on a guess (a crate the table does
    not know may turn the feature on) is a "maybe" edge; it is not taken from a package whose TLS
    request is already explained by a member's own declaration or opt-in feature.
    """

    def __init__(self, lk, cat: Catalog):
        self.lk = lk
        n = len(lk.packages)
        self.rows = [cat.row(p.name, _ver(p.version)) for p in lk.packages]
        self.clean = [cat.is_not_native(p.name, _ver(p.version)) for p in lk.packages]
        self.sink = [p.name in SINKS for p in lk.packages]
        self.native_crate = [self.sink[i] or (self.rows[i] is not None and self.rows[i].always)
                             for i in range(n)]
        self.explained: set = set()
        self.optin: set = set()

    def step(self, p: int, f: int, c: int):
        """(child's flag, maybe edge) or None when the edge is not taken."""
        ck = self.lk.packages[c]
        if ck.is_local:
            return None
        row = self.rows[p]
        if row is not None and row.always:
            return YES, False
        if row is not None:
            maybe = False
            if ck.name in row.gated:
                if f == YES:
                    pass
                elif f == MAYBE and p not in self.explained and p not in self.optin:
                    maybe = True
                else:
                    return None
            mentioned = row.mentioned
            fc = f if (ck.name in mentioned and f != NO) else NO
            return fc, maybe
        if self.clean[p]:
            return (None if self.native_crate[c] else (NO, False))
        if self.native_crate[c]:
            if f == YES:
                return YES, False
            if f == MAYBE and p not in self.explained and p not in self.optin:
                return YES, True
            return None
        return (NO if f == NO else MAYBE), False

    def explain(self, starts):
        seen = set()
        queue = deque()
        for s in starts:
            if s not in seen:
                seen.add(s)
                queue.append(s)
        while queue:
            p, f = queue.popleft()
            if f == YES:
                self.explained.add(p)
            for c in self.lk.packages[p].deps:
                t = self.step(p, f, c)
                if t is None or t[1]:
                    continue
                s = (c, t[0])
                if s not in seen:
                    seen.add(s)
                    queue.append(s)

    def opt_in(self, packages):
        """Packages whose TLS a member's opt-in feature may turn on: the opted-in packages and all they
        may ask in turn."""
        seen = set()
        queue = deque((p, YES) for p in packages)
        optin = set()
        while queue:
            s = queue.popleft()
            if s in seen:
                continue
            seen.add(s)
            p, f = s
            if f != NO:
                optin.add(p)
            for c in self.lk.packages[p].deps:
                t = self.step(p, f, c)
                if t is not None and (c, t[0]) not in seen:
                    queue.append((c, t[0]))
        self.optin = optin - self.explained

    def distances(self):
        n = len(self.lk.packages)
        rev_exact = [[] for _ in range(3 * n)]
        rev_any = [[] for _ in range(3 * n)]
        for p in range(n):
            for c in self.lk.packages[p].deps:
                for f in (YES, MAYBE, NO):
                    t = self.step(p, f, c)
                    if t is None:
                        continue
                    a, b = 3 * p + f, 3 * c + t[0]
                    rev_any[b].append(a)
                    if not t[1]:
                        rev_exact[b].append(a)
        self.next_exact = _bfs(rev_exact, self.sink, n)
        self.next_any = _bfs(rev_any, self.sink, n)

    def culprit_edge(self, chain) -> tuple:
        """The edge into the first native crate of a chain (chain[0] is the member)."""
        for k in range(1, len(chain)):
            if self.native_crate[chain[k].index]:
                return (chain[k - 1].index, chain[k].index)
        return (chain[-2].index, chain[-1].index)

    def chain(self, p: int, f: int):
        for nxt, maybe in ((self.next_exact, False), (self.next_any, True)):
            s = 3 * p + f
            if s not in nxt:
                continue
            out = [p]
            while nxt[s] is not None:
                s = nxt[s]
                out.append(s // 3)
            return out, maybe
        return None


def _bfs(rev, sink, n):
    nxt = {}
    queue = deque()
    for i in range(n):
        if sink[i]:
            for f in (YES, MAYBE, NO):
                nxt[3 * i + f] = None
                queue.append(3 * i + f)
    while queue:
        s = queue.popleft()
        for a in rev[s]:
            if a not in nxt:
                nxt[a] = s
                queue.append(a)
    return nxt


def _descendants(lk, pkg) -> set:
    """Names of the registry packages below pkg in the lock (what building it brings in anyway)."""
    seen = {pkg.index}
    queue = deque([pkg.index])
    while queue:
        for c in lk.packages[queue.popleft()].deps:
            if c not in seen and not lk.packages[c].is_local:
                seen.add(c)
                queue.append(c)
    return {lk.packages[i].name for i in seen}


def _plain_reach(lk) -> set:
    """Packages from which the lock reaches native-tls or openssl-sys, not through local packages."""
    rev = [[] for _ in lk.packages]
    for p in lk.packages:
        for c in p.deps:
            if not lk.packages[c].is_local:
                rev[c].append(p.index)
    reach = {p.index for p in lk.packages if p.name in SINKS}
    queue = deque(reach)
    while queue:
        c = queue.popleft()
        for p in rev[c]:
            if p not in reach:
                reach.add(p)
                queue.append(p)
    return reach


def _extend(lk, chain):
    """Show native-tls's own OpenSSL: ... -> native-tls -> openssl-sys."""
    last = chain[-1]
    if last.name == "native-tls":
        for c in last.deps:
            if lk.packages[c].name == "openssl-sys":
                return [*chain, lk.packages[c]]
    return chain


def _culprit(pkgs, cat):
    """The crate that turns native TLS on in a chain (the member's dependency first): the crate just
    before the native crates, or, when that one is in the table (reqwest) and so only does what it is
    asked, the nearest crate before it that the table does not know."""
    rows = [cat.row(p.name, _ver(p.version)) for p in pkgs]
    for i, (p, row) in enumerate(zip(pkgs, rows)):
        if p.name in SINKS or (row is not None and row.always):
            j = i - 1
            while j > 0 and rows[j] is not None:
                j -= 1
            return pkgs[max(j, 0)] if i > 0 else None
    return None


# ----------------------------------------------------------------------------------- message text

_TLS_CRATES = ("native-tls", "openssl", "openssl-sys", "hyper-tls", "tokio-native-tls", "async-native-tls",
               "postgres-native-tls", "postgres-openssl", "tokio-openssl", "hyper-openssl", "tokio-tls")


def _compose(rep: Report) -> str:
    """The message of a report: what pulls native TLS in, the consequence, the fix."""
    parts: dict = {}
    for k, val in rep.parts:
        parts.setdefault(k, val)
    head = ""
    if "member" in parts:
        name, rel = parts["member"]
        others = [m for m in rep.members if m != name]
        head = f"{name}" + (f" (and {', '.join(others[:3])}{', ...' if len(others) > 3 else ''})" if others else "")
        head += f" ({rel}): "
    context = parts.get("context") if rep.level == "note" else None
    effect = _effect(parts["consequence"][0] if "consequence" in parts else None, context)
    if "backend-crate" in parts:
        key, hops, crate, on = parts["backend-crate"]
        inside = " -> ".join(hops)
        how = (f"this crate's default features switch it on ({on})" if on
               else "it is a plain dependency, on in every build")
        fix = ("Take it out of the default features and keep it opt-in, with a rustls backend as the default."
               if on else "Make it `optional = true` behind a feature, with a rustls backend as the default.")
        return (f"{head}{key} (path dependency) is a native-TLS backend crate ({inside} uses {crate}), and "
                f"{how}, so this crate {effect}. {fix}")
    if "member-feature" in parts:
        key, hops, crate, what, asked, alt, via = parts["member-feature"]
        other = hops[0]
        asks = (("feature " if len(asked) == 1 else "features ") + ", ".join(f"`{f}`" for f in asked)) \
            if asked else "its default features"
        if via:
            asks += f" (this crate's {via})"
        inside = " -> ".join(hops)
        turns = (f"{crate}'s {what}" if what.startswith("`") else f"{crate} with {what}") if what else crate
        if alt:
            fix = f"Ask {other} for `{alt}` instead."
        elif crate in _TLS_CRATES:
            fix = f"Stop asking {other} for it: {crate} is OpenSSL / native TLS itself."
        else:
            fix = f"Ask {other} for a rustls feature instead (or give it one that reaches {crate}'s rustls backend)."
        return (f"{head}{key} (path dependency): asking it for {asks} turns on {turns} in {inside}, "
                f"so it {effect}. {fix}")
    if "lock" in parts:
        crate, version, chain, culprit, maybe, chain_pkgs = parts["lock"]
        names = chain.split(" -> ")
        text = f"{head}{crate} {version}: Cargo.lock resolves {chain}, so it {effect}."
        if isinstance(culprit, tuple):
            feats = ", ".join(f"`{f}`" for f in culprit[1]) or "native TLS"
            return (text + f" This line asks {crate} for {feats}: drop it, or use {crate}'s rustls option "
                    f"if it has one (check `cargo tree -e features -i {names[-1]}`).")
        k = next((i for i, (n, row) in enumerate(chain_pkgs) if n in SINKS or (row is not None and row.always)),
                 len(chain_pkgs) - 1)
        prev = chain_pkgs[k - 1] if k > 0 else None
        native = chain_pkgs[k][0]
        who = culprit.name if culprit is not None else crate
        if prev is not None and prev[1] is not None:
            text += f" {who} turns on {prev[0]}'s native TLS"
            text += " (nothing else in the lock asks it to)." if maybe else "."
        elif prev is not None:
            text += f" {prev[0]} depends on {native}."
        text += (f" Check which feature of {crate} pulls it in (`cargo tree -e features -i {names[-1]}`) and use "
                 f"its rustls option if it has one (with `default-features = false`).")
        return text
    key, package, resolved = parts["crate"]
    name = package if key == package else f"{key} (package {package})"
    desc = f"{name} {resolved.text}"
    if "inherited" in parts:
        names = rep.members
        desc += f" (inherited by {', '.join(names[:4])}{', ...' if len(names) > 4 else ''})"
    causes = []
    if "always" in parts:
        row, _ = parts["always"]
        if row.name in _TLS_CRATES:
            on = (f", switched on by this crate's default features ({' -> '.join(parts['optional-on'])}),"
                  if "optional-on" in parts else "")
            return f"{head}{desc}{on} {effect}. {parts['fix']}".strip()
        causes.append("this version always builds native TLS")
    if "defaults" in parts:
        which, rustls_listed, dkey, from_root, ignored = parts["defaults"]
        what = f"`{which[0]}`" if which else "native TLS"
        if which and "native" not in which[0] and "openssl" not in which[0]:
            what += f" ({_leads_to(row_of(parts), which[0])})"
        if from_root:
            c = f"the [workspace.dependencies] entry keeps the default features, {what} among them, on"
            if ignored:
                c += " (`default-features = false` in a member is ignored unless the root sets it)"
        elif rustls_listed:
            c = (f"`features` adds {', '.join(rustls_listed)} but the default {what} stays on next to it "
                 f"until `{dkey} = false`")
        else:
            c = f"its default features stay on, {what} among them"
        causes.append(c)
    if "defaults-too" in parts:
        causes.append("its default features stay on")
    if "features" in parts:
        feats, at_root = parts["features"]
        c = ("feature " if len(feats) == 1 else "features ") + ", ".join(f"`{f}`" for f in feats)
        causes.append(f"the [workspace.dependencies] entry enables {c}" if at_root else c)
    if "optional-on" in parts:
        causes.append(f"this crate's default features switch it on ({' -> '.join(parts['optional-on'])})")
    if "own" in parts:
        paths = parts["own"]
        p = next(iter(paths.values()))
        causes.append(f"this crate's own features turn on `{next(iter(paths))}` ({' -> '.join(p)})")
    text = f"{head}{desc}: {'; '.join(causes)}, so it {effect}"
    if "unified" in parts:
        text += (" (a dev-dependency, but Cargo's resolver 1 applies its features to the normal build too; "
                 "`resolver = \"2\"` keeps them apart)")
    if "chain" in parts:
        text += f" (Cargo.lock: {parts['chain']})"
    if "caveat" in parts:
        text += f" ({parts['caveat']})"
    text += ". " + parts["fix"]
    return text.strip()


def _no_rustls_fix(package: str, row: Row) -> str:
    way_out = row.instead or "only another crate avoids OpenSSL"
    return f"{package} has no rustls backend in any release: {way_out}."


def _leads_to(row: Row, feature: str) -> str:
    crates = [f.crate for f in row.forwards.get(feature, ())]
    if any("native-tls" in c for c in crates) or not crates:
        return "native-tls"
    return "OpenSSL" if any("openssl" in c or c.startswith("curl") for c in crates) else "native TLS"


def row_of(parts) -> Row:
    return parts["consequence"][0]


def _effect(row, context) -> str:
    if context == "platform":
        return ("builds native TLS, which on these Windows / Apple targets is schannel / "
                "Security.framework rather than OpenSSL")
    openssl = "OpenSSL" + _where_openssl(row)
    if context == "support":
        return f"links {openssl} into this test / example crate"
    if context == "dev":
        return f"links {openssl} into tests and benches (a dev-dependency)"
    return f"links {openssl}"


def _where_openssl(row) -> str:
    pf = row.platforms if row is not None else cfg.ALL
    if pf == cfg.ALL or "windows" in pf:
        return ""
    if "macos" in pf:
        return " on Unix"
    return " on Linux"


def _chain_text(chain) -> str:
    return " -> ".join(p.name for p in chain)


# ------------------------------------------------------------------------------------------ helpers

def _effective(dep: mf.Dep, manifest_path: str, root_path: str | None, root_m: mf.Manifest | None):
    """A dependency as it takes effect, with the folder its `path` is relative to: `x.workspace =
    true` is merged with the workspace root's entry (and relative to the root); None when the root
    does not declare it."""
    if not dep.workspace:
        return dep, os.path.dirname(manifest_path)
    rd = root_m.workspace_deps.get(dep.key) if root_m is not None else None
    if rd is None:
        return None
    return mf.inherit(dep, rd), os.path.dirname(root_path)


def _norm(path) -> str:
    return os.path.normpath(os.path.abspath(str(path)))


def _rel(path: str, from_file: str) -> str:
    try:
        return os.path.relpath(path, os.path.dirname(from_file)).replace(os.sep, "/")
    except ValueError:
        return path


def _ver(text: str):
    try:
        return parse_version(text)
    except SemverError:
        return None


def _set_key(spec: dict, key: str, value, after=()) -> dict:
    """spec with key set: in place when present, else after the last of `after` present, else last."""
    if key in spec:
        return {k: (value if k == key else v) for k, v in spec.items()}
    out = {}
    anchor = None
    for k in spec:
        if k in after:
            anchor = k
    if anchor is None:
        return {**spec, key: value}
    for k, v in spec.items():
        out[k] = v
        if k == anchor:
            out[key] = value
    return out


def _rustls_sibling(m: mf.Manifest | None, asked: list[str]) -> str | None:
    """A feature of m that looks like the rustls twin of an asked native one
    (blocking-http-transport-curl-openssl -> blocking-http-transport-curl-rustls, native -> rustls)."""
    if m is None:
        return None
    rustls = [g for g in m.features if "rustls" in g or "rust-tls" in g]
    for f in asked:
        stem = _NATIVE_NAME.sub("", f).strip("-_")
        for g in rustls:
            if stem and g.startswith(stem):
                return g
    return rustls[0] if len(rustls) == 1 else None


def _resolver(m: mf.Manifest) -> str:
    """Cargo's feature resolver for a workspace root or lone package: "1" or "2"."""
    ws = m.workspace or {}
    pkg = m.data.get("package") if isinstance(m.data.get("package"), dict) else None
    explicit = ws.get("resolver") or (pkg or {}).get("resolver")
    if isinstance(explicit, str):
        return "1" if explicit == "1" else "2"
    edition = (pkg or {}).get("edition")
    if isinstance(edition, dict):  # edition.workspace = true
        edition = ((ws.get("package") or {}).get("edition"))
    if pkg is None:
        return "1"  # a virtual workspace without `resolver` uses resolver 1
    return "2" if isinstance(edition, str) and edition >= "2021" else "1"


def _unknown_flag(dep: mf.Dep, own: dict) -> int:
    """What a declaration asks of a crate the table does not know."""
    feats = [*dep.features, *own]
    if any(_NATIVE_NAME.search(f) and "rustls" not in f for f in feats):
        return YES
    if dep.default_features is False:
        return NO
    return MAYBE


def _member_package(lk, m: mf.Manifest, root_m):
    cands = lk.local(m.name)
    if len(cands) <= 1:
        return cands[0] if cands else None
    version = m.version
    if isinstance(version, dict) and root_m is not None and root_m.workspace is not None:
        version = (root_m.workspace.get("package") or {}).get("version")
    for p in cands:
        if p.version == version:
            return p
    return cands[0]


def _dep_package(lk, member_pkg, dep: mf.Dep):
    cands = [lk.packages[i] for i in member_pkg.deps if lk.packages[i].name == dep.package]
    if not cands:
        return None
    if len(cands) > 1 and dep.version:
        try:
            rng = parse_requirement(dep.version)
        except SemverError:
            rng = None
        if rng is not None:
            for p in cands:
                v = _ver(p.version)
                if v is not None and v in rng:
                    return p
    return cands[0]


def _words(name) -> list[str]:
    """The words of a crate or folder name: `example-low-level-native_tls` -> example low level native tls."""
    return [w for w in re.split(r"[-_.\s]+", str(name or "").lower()) if w]


def _has_words(words: list[str], phrase: list[str]) -> bool:
    n = len(phrase)
    return n > 0 and any(words[i:i + n] == phrase for i in range(len(words) - n + 1))


def _opt_in_native(m: mf.Manifest, d: mf.Dep) -> bool:
    """m takes its dependency d only through opt-in features named for native TLS: d is optional, no
    default feature switches it on, and every feature that switches it on is named so
    (`openssl = ["dep:pingora-openssl", ...]`)."""
    if not d.optional or d.kind == "dev" or d.key in features.resolve(m).deps_on:
        return False
    enabling = [f for f, vals in m.features.items()
                if any(v in (d.key, "dep:" + d.key) or v.startswith(d.key + "/") for v in vals)]
    return bool(enabling) and all(_NATIVE_NAME.search(f) and "rustls" not in f for f in enabling)
