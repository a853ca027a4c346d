"""CL101 unclosed-resource: a resource acquired in a function that is neither released on every
path out of it nor handed to someone else.

What is a resource, how it is released, and what its leak costs is data: the catalog tables of
rules/CL101-unclosed-resource.toml (`resources`, `types`, `borrowers`, `releasers`), which users
extend in their config with rows of the same shape.

The analysis, per candidate call (found by a tree-sitter query over the catalog's names, in files
whose bytes and imports can hold one):
1. match: a package function through the file's imports (aliases included), a method through the
   receiver's syntactic type (flow.Types: declarations, parameters, struct fields, known
   constructors), or a composite literal. No type, no match: precision first.
2. holder: where the value lands: a local (then tracked with its aliases), or handed off at once
   (returned, stored in a field, global, map, slice or channel, passed to another package), or
   discarded (`_`, a bare call statement, a chained call).
3. events: every use of the holder and its aliases, classified as a release (a call of a release
   method, also deferred, in a closure, in a goroutine, through a same-package helper that releases
   its parameter, or `t.Cleanup(x.Close)`), a hand-off, or a reassignment.
4. paths: flow.forward over the function's CFG from the acquire, with the error guard
   (`if err != nil`, `if x == nil`, errors.Is...) cutting the paths where nothing was acquired;
   every return, end of body, reassignment or next loop iteration reached with the resource still
   live is a leak.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from closelint import parsing
from closelint.golang import facts, flow
from closelint.treeutil import text, walk

# No TOKENS: user catalog rows add names, so the prefilter is computed from ctx.catalogs (below).

RELEASE, HANDOFF, REDEF, NEUTRAL = "release", "handoff", "redef", "neutral"
_BUILTIN_NEUTRAL = {"len", "cap", "print", "println", "delete", "copy", "close", "min", "max", "clear",
                    "panic", "recover", "complex", "real", "imag"}
_HELPER_DEPTH = 4
_MAX_RELATED = 3


# --------------------------------------------------------------------------------------- catalog


@dataclass(eq=False)
class Entry:
    kind: str  # function | method | literal
    package: str
    names: tuple
    receivers: tuple  # method entries: receiver base types (no leading *), qualified
    result: object  # int index | "receiver" | "none"
    rtype: str | None
    release: tuple
    path: tuple
    release_call: bool
    release_function: tuple | None
    exhausted_by: str | None
    what: str
    consequence: str
    name: str
    verb: str
    level: str | None
    before_go: tuple | None
    fix: str | None
    error_returns_ok: bool = False


def _as_tuple(v) -> tuple:
    if v is None:
        return ()
    return tuple(v) if isinstance(v, (list, tuple)) else (v,)


class Catalog:
    def __init__(self, tables: dict):
        self.functions: dict[tuple, Entry] = {}
        self.methods: dict[tuple, Entry] = {}
        self.literals: dict[tuple, Entry] = {}
        self.known: dict[tuple, list] = {}
        self.borrowers: dict[str, dict] = {}  # package -> {name or "*": wrapping}
        self.releasers: dict[tuple, int] = {}
        self.packages: set[str] = set()
        self.method_packages: set[str] = set()
        call_names, lit_names = set(), set()
        for row in tables.get("resources", []):
            e = _entry(row)
            if e is None:
                continue
            self.packages.add(e.package)
            if e.kind == "function":
                for n in e.names:
                    self.functions[(e.package, n)] = e
                    call_names.add(n)
                    if e.rtype and isinstance(e.result, int):
                        self._know((e.package, n), e.result, e.rtype)
            elif e.kind == "method":
                for r in e.receivers:
                    self.method_packages.add(r.rsplit(".", 1)[0] if "." in r else "")
                    for n in e.names:
                        self.methods[(r, n)] = e
                        call_names.add(n)
                        if e.rtype and isinstance(e.result, int):
                            self._know(("*" + r, n), e.result, e.rtype)
                            self._know((r, n), e.result, e.rtype)
            else:
                for n in e.names:
                    self.literals[(e.package, n)] = e
                    lit_names.add(n)
        for row in tables.get("types", []):
            results = list(row.get("results", []))
            pkg = row.get("package", "")
            for n in _as_tuple(row.get("functions", row.get("function"))):
                self.known[(pkg, n)] = results
            for r in _as_tuple(row.get("receivers", row.get("receiver"))):
                for n in _as_tuple(row.get("methods", row.get("method"))):
                    self.known[(r, n)] = results
                    self.known[(r.lstrip("*"), n)] = results
                    self.known[("*" + r.lstrip("*"), n)] = results
            if pkg:
                self.method_packages.add(pkg)
        for row in tables.get("borrowers", []):
            d = self.borrowers.setdefault(row.get("package", ""), {})
            for n in _as_tuple(row.get("functions", row.get("function"))):
                d[n] = bool(row.get("wrapping", False))
        for row in tables.get("releasers", []):
            for n in _as_tuple(row.get("functions", row.get("function"))):
                self.releasers[(row.get("package", ""), n)] = int(row.get("argument", -1))
        self.method_packages.discard("")
        self.call_names = call_names
        self.method_names = {n for (_, n) in self.methods}
        self.literal_names = lit_names
        alts = "|".join(sorted(map(re.escape, call_names))) or "(?!)"
        lalts = "|".join(sorted(map(re.escape, lit_names))) or "(?!)"
        self.bytes_re = re.compile(rb"\.(" + alts.encode() + rb")\s*\(|\.(" + lalts.encode() + rb")\s*\{")
        quoted = lambda names: " ".join('"%s"' % n.replace('"', "") for n in sorted(names))  # noqa: E731
        parts = []
        if call_names:
            parts.append("(call_expression function: (selector_expression field: (field_identifier) @name "
                         f"(#any-of? @name {quoted(call_names)}))) @call")
        if lit_names:
            parts.append("(composite_literal type: (qualified_type name: (type_identifier) @lit "
                         f"(#any-of? @lit {quoted(lit_names)}))) @literal")
        self.query = "\n".join(parts)

    def _know(self, key, index, rtype):
        res = list(self.known.get(key, []))
        while len(res) <= index:
            res.append("")
        res[index] = rtype
        self.known[key] = res

    def borrower(self, pkg: str, name: str):
        """None when pkg.name is not a borrower; else whether its result wraps the argument."""
        d = self.borrowers.get(pkg)
        if d is None:
            return None
        if name in d:
            return d[name]
        return d.get("*")


def _entry(row: dict) -> Entry | None:
    if "function" in row or "functions" in row:
        kind, names = "function", _as_tuple(row.get("functions", row.get("function")))
    elif "method" in row or "methods" in row:
        kind, names = "method", _as_tuple(row.get("methods", row.get("method")))
    elif "literal" in row:
        kind, names = "literal", _as_tuple(row["literal"])
    else:
        return None
    result = row.get("result", 0)
    rf = row.get("release-function")
    before = row.get("before-go")
    try:
        before_go = tuple(int(x) for x in str(before).split(".")[:2]) if before else None
    except ValueError:
        before_go = None
    release = _as_tuple(row.get("release", ()))
    return Entry(
        kind=kind, package=row.get("package", ""), names=names,
        receivers=tuple(r.lstrip("*") for r in _as_tuple(row.get("receivers", row.get("receiver")))),
        result=result, rtype=row.get("type"), release=release, path=_as_tuple(row.get("path")),
        release_call=bool(row.get("release-call", False)),
        release_function=tuple(rf.rsplit(".", 1)) if rf else None,
        exhausted_by=row.get("exhausted-by"), what=row.get("what", "resource"),
        consequence=row.get("consequence", "it is never released"), name=row.get("name", "x"),
        verb=row.get("verb", "closed"), level=row.get("level"), before_go=before_go, fix=row.get("fix"),
        error_returns_ok=bool(row.get("error-returns-ok", False)))


_CATALOGS: dict[int, tuple] = {}


def _catalog(ctx) -> Catalog:
    tables = ctx.catalogs
    hit = _CATALOGS.get(id(tables))
    if hit is None or hit[0] is not tables:
        hit = _CATALOGS[id(tables)] = (tables, Catalog(tables))
    return hit[1]


_IMPORT_SPEC = re.compile(rb'"([^"\n]+)"')


def _imports(data: bytes) -> set[str]:
    """Import paths of a Go file, read from the bytes before its first declaration."""
    end = len(data)
    for marker in (b"\nfunc ", b"\ntype ", b"\nvar ", b"\nconst "):
        i = data.find(marker)
        if i != -1 and i < end:
            end = i
    return {m.group(1).decode("utf-8", "replace") for m in _IMPORT_SPEC.finditer(data, 0, end)}


# ------------------------------------------------------------------------------------------ check


def check(ctx):
    cat = _catalog(ctx)
    if not cat.query:
        return
    imports = {src.path: _imports(src.data) for src in ctx.files if src.lang == "go"}
    unit_imports = set().union(*imports.values()) if imports else set()
    methods_possible = bool(unit_imports & cat.method_packages)
    wanted = []
    for src in ctx.targets:
        if src.lang != "go":
            continue
        file_imports = imports.get(src.path, set())
        if not (file_imports & cat.packages) and not methods_possible:
            continue
        names = {(m.group(1) or m.group(2)).decode() for m in cat.bytes_re.finditer(src.data)}
        if not names:
            continue
        if not methods_possible and not any(
                (p, n) in cat.functions or (p, n) in cat.literals for p in file_imports for n in names):
            continue
        wanted.append(src)
    if not wanted:
        return
    for src in wanted:
        gofile = ctx.package.file_of(src)
        if gofile is None:
            continue
        caps = parsing.captures("go", cat.query, src.root)
        for node in [*caps.get("call", []), *caps.get("literal", [])]:
            finding = _Acquire(ctx, cat, gofile, node).run()
            if finding is not None:
                yield finding


# --------------------------------------------------------------------------------------- analysis


class _Acquire:
    """One candidate acquiring call or literal, followed through its function."""

    def __init__(self, ctx, cat: Catalog, gofile, node):
        self.ctx, self.cat, self.gofile, self.node = ctx, cat, gofile, node
        self.scope = None
        self.entry: Entry | None = None
        self.any_release = False
        self.leaks: list = []

    # ---- matching

    def run(self):
        scope = facts.scope_at(self.ctx, self.node)
        if scope is None or scope.node == self.node:
            return None
        self.scope = scope
        self.bindings = flow.bindings(self.ctx, scope)
        self.types = flow.Types(self.ctx, scope, self.cat.known)
        entry = self._match()
        if entry is None:
            return None
        if entry.before_go:
            version = self.ctx.go_version(self.gofile.source)
            if version is not None and version >= entry.before_go:
                return None
        self.entry = entry
        return self._analyse()

    def _match(self) -> Entry | None:
        node, gofile, cat = self.node, self.gofile, self.cat
        if node.type == "composite_literal":
            t = node.child_by_field_name("type")
            pkg_node = t.child_by_field_name("package") if t is not None else None
            name_node = t.child_by_field_name("name") if t is not None else None
            if pkg_node is None or name_node is None:
                return None
            path = gofile.import_path(text(pkg_node))
            return cat.literals.get((path, text(name_node))) if path else None
        fn = node.child_by_field_name("function")
        operand = fn.child_by_field_name("operand")
        name = text(fn.child_by_field_name("field"))
        if operand is None:
            return None
        if operand.type == "identifier" and self.bindings.resolve(operand) is None:
            path = gofile.import_path(text(operand))
            if path is not None:
                return cat.functions.get((path, name))
        if name not in cat.method_names:
            return None
        rtype = self.types.of(operand)
        if not rtype:
            return None
        base = rtype.lstrip("*")
        entry = cat.methods.get((base, name))
        if entry is None and "." not in base and self.ctx.package.method(base, name) is None:
            for et in flow.embedded_types(self.ctx, base):
                entry = cat.methods.get((et.lstrip("*"), name))
                if entry is not None:
                    break
        if entry is None and "." not in base:
            entry = self._interface_method(base, name)
        return entry

    def _interface_method(self, base, name) -> Entry | None:
        """An interface of this package whose method returns a catalog resource type, written out:
        `type doer interface { Do(*http.Request) (*http.Response, error) }` -> c.Do(req) acquires."""
        decl = self.ctx.package.type_defs.get(base, "")
        if not decl.startswith("interface"):
            return None
        m = re.search(r"(?m)^\s*" + re.escape(name) + r"\(([^()]|\([^()]*\))*\)\s*\(?\s*([^,()\n]+)", decl)
        if m is None:
            return None
        first = m.group(2).strip()
        for e in {id(e): e for (r, n), e in self.cat.methods.items() if n == name}.values():
            if e.rtype and isinstance(e.result, int) and e.result == 0 and e.rtype == first:
                return e
        return None

    # ---- analysis

    def _analyse(self):
        e, node = self.entry, self.node
        self.g = flow.cfg(self.ctx, self.scope)
        self.start = self.g.node_for(node)
        if self.start is None or self.start.kind not in ("stmt", "defer", "go", "cond", "return", "switch",
                                                         "range"):
            return None
        self.err: flow.Binding | None = None
        self.holder: flow.Binding | None = None
        self.handles: list[tuple] = []  # (binding, path or None)
        if e.result == "receiver":
            return self._receiver_kind()
        if e.result == "none":
            return self._function_kind()
        vc = flow.value_context(node)
        if e.kind == "literal" and node.parent is not None and node.parent.type == "unary_expression":
            vc = flow.value_context(node.parent)
        idx = e.result if isinstance(e.result, int) else 0
        if vc.kind == "assigned":
            stmt = vc.node
            left = stmt.child_by_field_name("left")
            targets = left.named_children if left is not None else stmt.children_by_field_name("name")
            multi = stmt.child_by_field_name("right") or stmt.child_by_field_name("value")
            single_call = multi is not None and len(multi.named_children) == 1 and len(targets) > 1
            target = targets[idx] if single_call and idx < len(targets) else vc.target
            if single_call and vc.wrapped:
                return None
            if single_call:
                last = targets[-1]
                if len(targets) - 1 != idx and last.type == "identifier":
                    self.err = self.bindings.resolve(last)
            if target is None or (target.type == "identifier" and text(target) == "_"):
                return self._report_discarded("discarded")
            if target.type != "identifier":
                return None  # stored in a field, map, slice element: handed off
            b = self.bindings.resolve(target)
            if b is None or b.kind == "result" or b.scope_node.id != self.scope.node.id:
                return None  # a global, a named result, or a variable of an enclosing function
            self.holder = b
            path = None if vc.wrapped else e.path
            self.handles.append((b, path))
            return self._flow()
        if vc.kind in ("statement", "go"):
            return self._report_discarded("discarded")
        if vc.kind == "receiver":
            sel = vc.node
            field_name = text(sel.child_by_field_name("field"))
            if field_name in e.release or (e.path and field_name == e.path[0]):
                return None
            return self._report_discarded("chained")
        if vc.kind == "argument":
            ev = self._argument(vc, e.path, 0, set())
            if ev == NEUTRAL:
                return self._report_discarded("consumed")
            return None
        return None  # returned, sent, compared...: handed off or not ours to judge

    def _receiver_kind(self):
        """(*exec.Cmd).Start: the receiver becomes the resource; it must be waited for."""
        fn = self.node.child_by_field_name("function")
        operand = fn.child_by_field_name("operand")
        if operand is None or operand.type != "identifier":
            return None
        b = self.bindings.resolve(operand)
        if b is None or b.is_param or b.scope_node.id != self.scope.node.id:
            return None
        if not self._constructed_here(b):
            return None  # made by a helper, which may have arranged for its end (t.Cleanup...)
        if self.start.kind != "stmt" and self.start.kind != "cond":
            return None
        self._err_of_call()
        self.holder = b
        self.handles.append((b, ()))
        return self._flow()

    def _constructed_here(self, b) -> bool:
        """b's value comes straight from another package's constructor (exec.Command) or a literal."""
        v = b.value
        if v is None:
            return b.type_node is not None and b.kind == "var"
        while v.type in ("unary_expression", "parenthesized_expression") and v.named_children:
            v = v.named_children[-1]
        if v.type == "composite_literal":
            return True
        if v.type != "call_expression":
            return False
        fn = v.child_by_field_name("function")
        if fn is None or fn.type != "selector_expression":
            return False
        operand = fn.child_by_field_name("operand")
        return operand is not None and operand.type == "identifier" and self.bindings.resolve(operand) is None \
            and self.gofile.import_path(text(operand)) is not None

    def _function_kind(self):
        """pprof.StartCPUProfile: nothing to hold; the release is a package function call. Global
        state is released wherever the package wants: a call elsewhere in the package (a Stop
        method) is a hand-off."""
        if self.start.kind not in ("stmt", "cond"):
            return None
        name = self.entry.release_function[1].encode()
        body = self.scope.node
        here = self.gofile.source.data[body.start_byte:body.end_byte]
        if b"." + name + b"(" not in here and any(b"." + name + b"(" in f.data for f in self.ctx.files):
            return None
        self._err_of_call()
        return self._flow()

    def _err_of_call(self):
        vc = flow.value_context(self.node)
        if vc.kind == "assigned" and vc.target is not None and vc.target.type == "identifier":
            self.err = self.bindings.resolve(vc.target)

    # ---- events

    def _collect_events(self):
        """node index -> strongest event, walking the uses of every handle (aliases found on the way)."""
        events: dict[int, str] = {}
        self.any_release = False
        self.covered_before = False
        seen_handles = set()
        queue = list(self.handles)
        literals: dict[int, object] = {}
        redefs: list = []
        flows_on: set = set()  # nodes where the value flows into another variable (x = wrap(x))
        while queue:
            b, path = queue.pop()
            key = (id(b), path)
            if key in seen_handles:
                continue
            seen_handles.add(key)
            for use in b.uses:
                if use.id == b.node.id:
                    continue
                n = self.g.node_for(use)
                if n is None:
                    continue
                lits = flow.literal_chain(use, self.scope.node)
                ev, alias = self._use_event(use, b, path, self.scope.node, 0, set())
                if ev == REDEF:
                    if n is self.start:
                        continue
                    if lits:
                        ev = HANDOFF
                    else:
                        redefs.append(n)
                        continue
                if alias is not None:
                    queue.append(alias)
                    flows_on.add(n.index)
                    continue
                if ev == NEUTRAL and lits:
                    literals[lits[0].id] = lits[0]
                    continue
                if ev in (RELEASE, HANDOFF):
                    self.any_release = True
                    if n.kind == "defer" and lits and n.ast.start_byte < self.node.start_byte:
                        self.covered_before = True
                    prev = events.get(n.index)
                    if prev != RELEASE:
                        events[n.index] = ev
        if self.entry.release_function is not None:
            self._function_release_events(events)
        for lit in literals.values():
            if self._closure_escapes(lit):
                n = self.g.node_for(lit)
                if n is not None:
                    self.any_release = True
                    events.setdefault(n.index, HANDOFF)
        self.handle_ids = {k[0] for k in seen_handles}
        if len(self.handle_ids) <= 1:  # with an alias still holding it, a reassignment loses nothing
            for n in redefs:
                if n.index not in flows_on:
                    events.setdefault(n.index, REDEF)
        self.events = events

    def _function_release_events(self, events):
        pkg, name = self.entry.release_function
        body = self.scope.body
        q = "(call_expression function: (selector_expression operand: (identifier) @pkg field: (field_identifier) @name)) @call"
        for call, in_caps in _calls(body, q):
            fn = call.child_by_field_name("function")
            operand = fn.child_by_field_name("operand")
            if text(fn.child_by_field_name("field")) != name or self.gofile.import_path(text(operand)) != pkg:
                continue
            n = self.g.node_for(call)
            if n is not None:
                self.any_release = True
                events[n.index] = RELEASE

    def _use_event(self, use, b, path, scope_node, depth, seen):
        """(event, alias handle or None) for one use of handle (b, path)."""
        e = self.entry
        if use in b.defs or any(d.id == use.id for d in b.defs):
            return REDEF, None
        top, fields = flow.selector_chain(use)
        release = e.release
        if path is None:  # a wrapper holding the resource: any release method on it counts
            if any(f in release for f in fields):
                return RELEASE, None
            if fields:
                return (RELEASE if self._wrapper_method_releases(use, b, fields[0]) else NEUTRAL), None
            rem = None
        else:
            k = 0
            while k < len(fields) and k < len(path) and fields[k] == path[k]:
                k += 1
            if k < len(fields) and k < len(path):
                return NEUTRAL, None  # another field: resp.StatusCode
            if len(fields) > len(path):
                rest = fields[len(path):]
                hit = any(".".join(rest[:k]) in release for k in range(1, len(rest) + 1))
                return (RELEASE if hit else NEUTRAL), None
            rem = tuple(path[len(fields):])
        vc = flow.value_context(top)
        if vc.kind == "called":
            if e.release_call and not rem:
                return RELEASE, None
            return NEUTRAL, None
        return self._value_event(vc, rem, scope_node, depth, seen)

    def _wrapper_method_releases(self, use, b, name) -> bool:
        """`w.Run()` on a package type wrapping the resource: does Run's body call a release method?"""
        scope = facts.scope_at(self.ctx, use)
        if scope is None:
            return False
        t = flow.Types(self.ctx, scope, self.cat.known).of_binding(b)
        if not t or "." in t.lstrip("*"):
            return False
        m = self.ctx.package.method(t.lstrip("*"), name)
        if m is None or m.body is None:
            return False
        body = m.body.text
        return any(b"." + r.split(".")[-1].encode() + b"(" in body for r in self.entry.release)

    def _value_event(self, vc, rem, scope_node, depth, seen):
        if vc.kind in ("returned", "sent"):
            return HANDOFF, None
        if vc.wrapped and _external_literal(vc.expr):
            return HANDOFF, None  # inside another package's type: its methods may own it
        if vc.kind == "assigned":
            target = vc.target
            if target is None:
                return NEUTRAL, None
            if target.type != "identifier":
                return HANDOFF, None
            tb = self.bindings.resolve(target) if scope_node == self.scope.node else _resolve_any(self.ctx, target)
            if tb is None or tb.kind == "result":
                return HANDOFF, None
            if tb.scope_node.id != scope_node.id and not _inside(tb.scope_node, scope_node):
                return HANDOFF, None
            return NEUTRAL, (tb, None if vc.wrapped else rem)
        if vc.kind == "argument":
            return self._argument(vc, rem, depth, seen), None
        return NEUTRAL, None

    def _argument(self, vc, rem, depth, seen) -> str:
        call = vc.node
        fn = call.child_by_field_name("function")
        in_go = call.parent is not None and call.parent.type == "go_statement"
        if fn is None:
            return HANDOFF
        if fn.type == "func_literal":
            disp = self._param_disposition(fn, vc.index, rem, depth, seen)
            return _disposition_event(disp, in_go)
        if fn.type == "identifier":
            name = text(fn)
            b = _resolve_any(self.ctx, fn)
            if b is not None:
                return HANDOFF
            if name == "append":
                return HANDOFF
            if name in _BUILTIN_NEUTRAL:
                return NEUTRAL
            target = self.ctx.package.functions.get(name)
            if target is not None:
                disp = self._param_disposition(target.node, vc.index, rem, depth, seen)
                return _disposition_event(disp, in_go)
            if name in self.ctx.package.type_defs:  # a conversion: the value goes on
                ev, alias = self._value_event(flow.value_context(call), rem, self._scope_node_of(call), depth, seen)
                return HANDOFF if alias is not None else ev
            return HANDOFF
        if fn.type == "selector_expression":
            operand = fn.child_by_field_name("operand")
            name = text(fn.child_by_field_name("field"))
            gofile = self._file_of(call)
            if operand is not None and operand.type == "identifier" and _resolve_any(self.ctx, operand) is None:
                path = gofile.import_path(text(operand)) if gofile else None
                if path is not None:
                    if (path, name) in self.cat.releasers:
                        want = self.cat.releasers[(path, name)]
                        return RELEASE if want in (-1, vc.index) else NEUTRAL
                    wrapping = self.cat.borrower(path, name)
                    if wrapping is None:
                        return HANDOFF
                    if not wrapping:
                        return NEUTRAL
                    ev, alias = self._value_event(flow.value_context(call), None, self._scope_node_of(call),
                                                  depth, seen)
                    return HANDOFF if alias is not None else ev
            scope = facts.scope_at(self.ctx, call)
            if scope is None:
                return HANDOFF
            rtype = flow.Types(self.ctx, scope, self.cat.known).of(operand)
            if rtype:
                base = rtype.lstrip("*")
                if "." not in base:
                    m = self.ctx.package.method(base, name)
                    if m is not None:
                        disp = self._param_disposition(m.node, vc.index, rem, depth, seen)
                        return _disposition_event(disp, in_go)
            return HANDOFF
        return HANDOFF

    def _scope_node_of(self, node):
        s = facts.scope_at(self.ctx, node)
        return s.node if s is not None else self.scope.node

    def _file_of(self, node):
        s = facts.scope_at(self.ctx, node)
        return s.file if s is not None else self.gofile

    def _param_disposition(self, func_node, index, rem, depth, seen) -> str:
        """What a function does with its parameter `index` holding the resource (path rem):
        release | handoff | none."""
        key = (func_node.id, index, rem)
        if key in seen:
            return "none"
        if depth >= _HELPER_DEPTH:
            return "handoff"
        memo = self.ctx.shared.setdefault("cl101.helpers", {})
        mkey = (id(self.entry), key)
        if mkey in memo:
            return memo[mkey]
        seen = seen | {key}
        scope = facts.scope_at(self.ctx, func_node)
        if scope is None or scope.body is None:
            return "handoff"
        idents = _param_idents(func_node)
        if not idents:
            return "none"
        if index >= len(idents):
            if not idents[-1][1]:
                return "handoff"
            index = len(idents) - 1
        ident, variadic = idents[index]
        if ident is None:
            return "none"
        if variadic:
            return "handoff"
        bs = flow.bindings(self.ctx, scope)
        pb = bs.declared_by(ident)
        if pb is None:
            return "none"
        result = "none"
        queue, done = [(pb, rem)], set()
        while queue and result != "release":
            b, path = queue.pop()
            if (id(b), path) in done:
                continue
            done.add((id(b), path))
            for use in b.uses:
                if use.id == b.node.id:
                    continue
                ev, alias = self._use_event(use, b, path, b.scope_node, depth + 1, seen)
                if alias is not None:
                    queue.append(alias)
                elif ev == RELEASE:
                    result = "release"
                    break
                elif ev in (HANDOFF, REDEF):
                    result = "handoff"
                elif ev == NEUTRAL and flow.literal_chain(use, b.scope_node):
                    lit = flow.literal_chain(use, b.scope_node)[0]
                    if self._closure_escapes(lit):
                        result = "handoff"
        memo[mkey] = result
        return result

    def _closure_escapes(self, lit) -> bool:
        """A function literal that outlives the call: run as a goroutine, returned, stored, sent,
        or passed to a function."""
        vc = flow.value_context(lit)
        if vc.kind == "called":
            return vc.node.parent is not None and vc.node.parent.type == "go_statement"
        if vc.kind in ("returned", "sent", "argument"):
            return True
        if vc.kind == "assigned":
            if vc.target is None:
                return False
            if vc.target.type != "identifier":
                return True
            b = _resolve_any(self.ctx, vc.target)
            if b is None or b.kind == "result":
                return True
            for use in b.uses:
                if use.id == b.node.id or any(d.id == use.id for d in b.defs):
                    continue
                if flow.value_context(use).kind != "called":
                    return True
            return False
        return False

    # ---- paths

    def _flow(self):
        self._collect_events()
        if self.covered_before:
            return None
        e = self.entry
        events = self.events
        start = self.start
        leaks: list[tuple[str, flow.Node]] = []
        handle_bindings = self.handle_ids
        err = self.err
        err_defs = set()
        if err is not None:
            for d in err.defs:
                n = self.g.node_for(d)
                if n is not None and n is not start:
                    err_defs.add(n.index)

        def transfer(node, st):
            if node is start:
                leaks.append(("loop", node))
                return None
            ev = events.get(node.index)
            if ev == RELEASE or ev == HANDOFF or node.kind == "terminate":
                return None
            if ev == REDEF:
                leaks.append(("overwritten", node))
                return None
            if node.kind in ("return", "end"):
                leaks.append(("exit", node))
                return None
            if st == "G" and node.index in err_defs:
                return "L"
            return st

        def edge(node, label, st):
            if label is None:
                return st
            if self._invalid(label.cond, label.value, st == "G", handle_bindings):
                return None
            return st

        if start.kind in ("return",):
            return None
        if not flow.forward(self.g, start, "G" if err is not None else "L", transfer, edge):
            return None
        leaks = [lk for lk in leaks if not self._after_exhausted_loop(lk)]
        if e.error_returns_ok:
            leaks = [lk for lk in leaks if not self._returns_error(lk)]
        if not leaks:
            return None
        self.leaks = leaks
        return self._report(leaks)

    def _returns_error(self, leak) -> bool:
        """A return that hands back a non-nil error (the function failed: a writer's lost trailer
        does not matter there)."""
        kind, node = leak
        if kind != "exit" or node.kind != "return":
            return False
        results = self.scope.results
        if not results or results[-1].type != "error":
            return False
        values = node.ast.named_children
        if values and values[0].type == "expression_list":
            values = values[0].named_children
        if not values or values[-1].type == "nil":
            return False
        last = values[-1]
        if last.type in ("call_expression", "selector_expression", "unary_expression"):
            return True  # fmt.Errorf(...), pkg.ErrClosed, &MyError{}
        n = node.ast.parent
        while n is not None and n.id != self.scope.node.id:
            if n.type == "if_statement":
                cond = n.child_by_field_name("condition")
                if cond is not None and b"!= nil" in cond.text:
                    return True
            n = n.parent
        return False

    def _after_exhausted_loop(self, leak) -> bool:
        """`for i := 0; i < n; i++ { f, err = open(); if ... { continue }; break }` then
        `if i == n { return errTooMany }`: that return follows the iterations that acquired nothing.
        A return guarded by a condition on the counter of a loop around the acquire is not a leak."""
        kind, node = leak
        if kind != "exit" or node.kind != "return":
            return False
        counters = set()
        for loop in facts.loops_between(self.node, self.scope):
            clause = next((c for c in loop.named_children if c.type == "for_clause"), None)
            if clause is None:
                continue
            for part in ("initializer", "update"):
                x = clause.child_by_field_name(part)
                for ident in ([] if x is None else [n for n in _idents(x)]):
                    b = self.bindings.resolve(ident)
                    if b is not None:
                        counters.add(id(b))
        if not counters:
            return False
        n = node.ast.parent
        while n is not None and n.type in ("statement_list", "block"):
            n = n.parent
        if n is None or n.type != "if_statement":
            return False
        cond = n.child_by_field_name("condition")
        return any(id(self.bindings.resolve(i)) in counters for i in _idents(cond) if self.bindings.resolve(i))

    def _invalid(self, cond, value: bool, guarded: bool, handles: set) -> bool:
        """On this edge (cond evaluated to value), was nothing acquired, or is it already released
        (rows.Next() returned false)?"""
        r = self._cond_facts(cond, guarded, handles)
        return r[0] if value else r[1]

    def _cond_facts(self, cond, guarded, handles) -> tuple[bool, bool]:
        """(invalid when true, invalid when false)."""
        t = cond.type
        if t == "parenthesized_expression" and cond.named_children:
            return self._cond_facts(cond.named_children[0], guarded, handles)
        if t == "unary_expression" and text(cond.child_by_field_name("operator") or cond.children[0]) == "!":
            a, b = self._cond_facts(cond.child_by_field_name("operand"), guarded, handles)
            return b, a
        if t == "binary_expression":
            op = text(cond.child_by_field_name("operator"))
            left, right = cond.child_by_field_name("left"), cond.child_by_field_name("right")
            if op in ("&&", "||"):
                lt, lf = self._cond_facts(left, guarded, handles)
                rt, rf = self._cond_facts(right, guarded, handles)
                if op == "&&":
                    return lt or rt, lf and rf
                return lt and rt, lf or rf
            if op in ("==", "!="):
                other = None
                if right is not None and right.type == "nil":
                    other = left
                elif left is not None and left.type == "nil":
                    other = right
                if other is None:
                    # err == io.EOF, err == sql.ErrNoRows: true only when err is not nil
                    for a, b in ((left, right), (right, left)):
                        if guarded and op == "==" and a is not None and a.type == "identifier" \
                                and self.bindings.resolve(a) is self.err and self.err is not None:
                            return True, False
                    return False, False
                kind = self._nil_subject(other, guarded, handles)
                if kind is None:
                    return False, False
                # err != nil -> invalid when true; x == nil -> invalid when true
                if kind == "err":
                    return (True, False) if op == "!=" else (False, True)
                return (True, False) if op == "==" else (False, True)
            return False, False
        if t == "call_expression":
            fn = cond.child_by_field_name("function")
            args = cond.child_by_field_name("arguments")
            if fn is not None and fn.type == "selector_expression" and self.entry.exhausted_by:
                operand = fn.child_by_field_name("operand")
                if text(fn.child_by_field_name("field")) == self.entry.exhausted_by and operand is not None \
                        and operand.type == "identifier":
                    b = self.bindings.resolve(operand)
                    if b is not None and id(b) in handles:
                        self.any_release = True  # run to its end, it releases itself
                        return False, True
            if guarded and self.err is not None and args is not None and fn is not None:
                name = text(fn.child_by_field_name("field") if fn.type == "selector_expression" else fn)
                if re.match(r"^(Is|is|As)[A-Z]?", name) and any(
                        a.type == "identifier" and self.bindings.resolve(a) is self.err for a in args.named_children):
                    return True, False
        return False, False

    def _nil_subject(self, expr, guarded, handles):
        if expr.type == "identifier":
            b = self.bindings.resolve(expr)
            if b is None:
                return None
            if guarded and b is self.err:
                return "err"
            if id(b) in handles:
                return "handle"
            return None
        if expr.type == "selector_expression":
            top = expr
            while top.type == "selector_expression":
                top = top.child_by_field_name("operand")
            if top.type == "identifier":
                b = self.bindings.resolve(top)
                if b is not None and id(b) in handles:
                    return "handle"
        return None

    # ---- reporting

    def _var(self) -> str:
        return self.holder.name if self.holder is not None else self.entry.name

    def _callee(self) -> str:
        if self.node.type == "composite_literal":
            amp = "&" if self.node.parent is not None and self.node.parent.type == "unary_expression" else ""
            return amp + text(self.node.child_by_field_name("type")) + "{}"
        return text(self.node.child_by_field_name("function"))

    def _fix(self) -> str:
        e, v = self.entry, self._var()
        if e.fix:
            return e.fix.replace("{var}", v)
        if e.release_function:
            pkg, name = e.release_function
            return f"`defer {pkg.rsplit('/', 1)[-1]}.{name}()`"
        if e.release_call:
            return f"`defer {v}()`"
        path = "".join(f".{p}" for p in e.path)
        return f"`defer {v}{path}.{e.release[0]}()`" if e.release else "a release"

    def _level(self) -> str | None:
        e, scope = self.entry, self.scope
        if e.level:
            return e.level
        path = str(self.gofile.source.path)
        if path.endswith("_test.go"):
            return self.ctx.options.get("test-level", "note")
        decl = scope.declaration
        if decl.function is not None and decl.name == "main" and self.gofile.package == "main":
            return "note"
        conn_types = set(self.ctx.options.get("connection-types", []))
        per_iteration = not self.any_release or any(k == "loop" for k, _ in self.leaks)
        s = scope
        while s is not None:
            if (per_iteration and facts.loops_between(self.node, s)) or s.framework:
                return "error"
            if any(p.type in conn_types for p in s.params):
                return "error"
            s = s.parent
        return None

    def _finding(self, message, related=()):
        return self.ctx.finding(self.gofile.source, self.node, message, level=self._level(),
                                related=related, function=self.scope.name)

    def _report_discarded(self, how):
        e = self.entry
        what = f"{e.what} from {self._callee()}"
        if how == "discarded":
            msg = (f"{what} is discarded without being {e.verb}: {e.consequence}; keep it in a variable "
                   f"and add {self._fix()}.")
        elif how == "chained":
            msg = (f"{what} is used once and never {e.verb}: {e.consequence}; keep it in a variable "
                   f"and add {self._fix()}.")
        else:
            msg = (f"{what} is passed on but never {e.verb}: {e.consequence}; keep it in a variable "
                   f"and add {self._fix()}.")
        return self._finding(msg)

    def _report(self, leaks):
        e = self.entry
        what = f"{e.what} from {self._callee()}"
        v = self._var()
        src = self.gofile.source
        after = "after checking the error" if self.err is not None else "after creating it"
        if not self.any_release:
            return self._finding(f"{what} is never {e.verb}: {e.consequence}; add {self._fix()} {after}.")
        related = []
        first = None
        for kind, node in sorted(leaks, key=lambda x: x[1].ast.start_byte if x[1].ast is not None else 0):
            line = node.ast.start_point[0] + 1
            if kind == "exit" and node.kind == "return":
                related.append((src, node.ast, f"returns here without {_gerund(e.verb)} {v}"))
                first = first or f"the return on line {line} leaves it open"
            elif kind == "exit":
                related.append((src, node.ast, f"the function ends here without {_gerund(e.verb)} {v}"))
                first = first or f"the end of the function on line {line} is reached with it open"
            elif kind == "overwritten":
                related.append((src, node.ast, f"{v} is overwritten here while still open"))
                first = first or f"{v} is overwritten on line {line} while still open"
            else:
                first = first or "the next loop iteration acquires another one before this one is released"
        related = related[:_MAX_RELATED]
        return self._finding(f"{what} is not {e.verb} on every path: {first}; {e.consequence}; "
                             f"add {self._fix()} right {after}.", related)


def _idents(node):
    if node is None:
        return []
    return [n for n in walk(node) if n.type == "identifier"]


def _external_literal(expr) -> bool:
    """expr (a value that went through composite literals) is or holds a literal of a type from
    another package (`tcpproxy.TCPProxy{Listener: l}`)."""
    n = expr
    while n is not None and n.type in ("unary_expression", "parenthesized_expression"):
        n = n.named_children[-1] if n.named_children else None
    if n is None or n.type != "composite_literal":
        return False
    t = n.child_by_field_name("type")
    return t is not None and t.type == "qualified_type"


def _gerund(verb: str) -> str:
    return {"closed": "closing", "stopped": "stopping", "called": "calling", "ended": "ending",
            "released": "releasing", "waited for": "waiting for",
            "committed or rolled back": "committing or rolling back"}.get(verb, "releasing")


def _disposition_event(disp: str, in_go: bool) -> str:
    if disp == "release":
        return RELEASE
    if disp == "handoff":
        return HANDOFF
    return HANDOFF if in_go else NEUTRAL


def _resolve_any(ctx, ident):
    scope = facts.scope_at(ctx, ident)
    if scope is None:
        return None
    return flow.bindings(ctx, scope).resolve(ident)


def _inside(node, ancestor) -> bool:
    n = node
    while n is not None:
        if n.id == ancestor.id:
            return True
        n = n.parent
    return False


def _param_idents(func_node) -> list[tuple]:
    """[(identifier or None, variadic)] in call order."""
    plist = func_node.child_by_field_name("parameters")
    out = []
    if plist is None:
        return out
    for d in plist.named_children:
        if d.type not in ("parameter_declaration", "variadic_parameter_declaration"):
            continue
        variadic = d.type == "variadic_parameter_declaration"
        names = d.children_by_field_name("name")
        if not names:
            out.append((None, variadic))
        for n in names:
            out.append((n, variadic))
    return out


def _calls(body, q):
    if body is None:
        return []
    caps = parsing.captures("go", q, body)
    return [(c, caps) for c in caps.get("call", [])]
