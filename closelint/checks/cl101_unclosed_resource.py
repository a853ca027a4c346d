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
   (`if err != nil`, `if x == nil`, errors.Is...) cutting the paths where nothing was acquired, and
   a test's assertion that the error is not nil (`require.Error(t, err)`) ending them; every return,
   end of body, reassignment or next loop iteration reached with the resource still live is a leak.
   A discarded result whose error is kept is followed the same way (`_, err := net.Dial(...)` then
   `if err == nil { t.Fatal(...) }` leaves nothing). A reused writer (`reset` rows) is followed from
   each Reset too, and holds nothing before its first write.
5. bounds: nothing is reported for a child of a context that ends with the function (the catalog's
   `scoped-contexts`), for a request fired at a listener the function accepts on itself, or, in
   test code, for a client whose transport makes its responses itself (`stubs`).
6. report: "never <verb>" when no path from the acquire releases it, "not <verb> on the path
   through line N" otherwise; level and "it happens again ..." from where the code runs (test code,
   main, scripts: note; loops, per-item callbacks, handlers, per-connection functions: error).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from closelint import parsing
from closelint.golang import facts, flow
from closelint.treeutil import alternation, paths_at, text, walk

# No TOKENS: user catalog rows add names, so the prefilter is computed from ctx.catalogs (below).

RELEASE, HANDOFF, REDEF, NEUTRAL, RESET = "release", "handoff", "redef", "neutral", "reset"
# A closure that uses the value and outlives the call (`go func() { use(f) }()`, `t.Run(n, func...)`):
# it may release the value later, so no path is reported past it, but it is no release for the wording.
LENT = "lent"
_BUILTIN_NEUTRAL = {"len", "cap", "print", "println", "delete", "copy", "close", "min", "max", "clear",
                    "panic", "recover", "complex", "real", "imag"}
_HELPER_DEPTH = 4
_MAX_RELATED = 3
_MAX_PATH = 2  # fields followed into struct literals (`x = &node{next: x}` must not grow forever)


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
    reset: tuple = ()
    parent: int | None = None


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
        # Contexts that end with the function holding them (`t.Context()`, a handler's r.Context()).
        self.scoped_contexts: list[tuple] = []  # (receivers set, compiled pattern or None, method, param, handler)
        for row in tables.get("scoped-contexts", []):
            pattern = row.get("receiver-pattern")
            try:
                rx = re.compile(pattern) if pattern else None
            except re.error:
                rx = None
            self.scoped_contexts.append((
                set(_as_tuple(row.get("receivers", row.get("receiver")))), rx, row.get("method", "Context"),
                bool(row.get("parameter", False)), bool(row.get("handler", False))))
        # Calls that look like resources but hold nothing (httptest.ResponseRecorder.Result).
        self.non_resources: set[tuple] = set()
        for row in tables.get("non-resources", []):
            for r in _as_tuple(row.get("receivers", row.get("receiver"))):
                for n in _as_tuple(row.get("methods", row.get("method"))):
                    self.non_resources.add((r.lstrip("*"), n))
            for n in _as_tuple(row.get("functions", row.get("function"))):
                self.non_resources.add((row.get("package", ""), n))
        # Test clients whose field makes their results itself (an http.Client with a stub Transport).
        self.stubs: dict[str, list] = {}  # receiver type without * -> [(field, makes, method)]
        for row in tables.get("stubs", []):
            for r in _as_tuple(row.get("receivers", row.get("receiver"))):
                self.stubs.setdefault(r.lstrip("*"), []).append(
                    (row.get("field", ""), row.get("makes", ""), row.get("method", "")))
        self.method_packages.discard("")
        self.call_names = call_names
        self.method_names = {n for (_, n) in self.methods}
        self.literal_names = lit_names
        alts, lalts = alternation(call_names), alternation(lit_names)
        # `.Name(` and `.Name{` where a catalog call or literal may be (a chain may break a line
        # after its dot): what check looks at, by position.
        self.bytes_re = re.compile(rb"\.\s*(" + alts.encode() + rb")\s*\(|\.\s*(" + lalts.encode() + rb")\s*\{")
        self.searched = bool(call_names or lit_names)

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
        error_returns_ok=bool(row.get("error-returns-ok", False)),
        reset=_as_tuple(row.get("reset", ())),
        parent=row.get("parent") if isinstance(row.get("parent"), int) else None)


_CATALOGS: dict[int, tuple] = {}


def _catalog(ctx) -> Catalog:
    tables = ctx.catalogs
    hit = _CATALOGS.get(id(tables))
    if hit is None or hit[0] is not tables:
        hit = _CATALOGS[id(tables)] = (tables, Catalog(tables))
    return hit[1]


# ------------------------------------------------------------------------------------------ check


def check(ctx):
    cat = _catalog(ctx)
    if not cat.searched:
        return
    imports = {gf.path: {*gf.imports.values(), *gf.dot_imports} for gf in ctx.package.files}
    unit_imports = set().union(*imports.values()) if imports else set()
    methods_possible = bool(unit_imports & cat.method_packages)
    wanted = []
    for src in ctx.targets:
        if src.lang != "go":
            continue
        file_imports = imports.get(src.path, set())
        if not (file_imports & cat.packages) and not methods_possible:
            continue
        hits = list(cat.bytes_re.finditer(src.data))
        names = {(m.group(1) or m.group(2)).decode() for m in hits}
        if not names:
            continue
        if not methods_possible and not any(
                (p, n) in cat.functions or (p, n) in cat.literals for p in file_imports for n in names):
            continue
        wanted.append((src, hits))
    for src, hits in wanted:
        gofile = ctx.package.file_of(src)
        if gofile is None:
            continue
        for node in _candidates(src, hits):
            finding = _Acquire(ctx, cat, gofile, node).run()
            if finding is not None:
                yield finding


def _candidates(src, hits) -> list:
    """The catalog's calls (`x.Open(...)`) and literals (`pkg.Ticker{...}`) of a file, calls first,
    found where the catalog's names occur in the text (hits: Catalog.bytes_re's matches), with no
    query over the whole tree."""
    calls, literals = [], []
    spans = [(m.span(1), True) if m.group(1) is not None else (m.span(2), False) for m in hits]
    for path, (_, is_call) in zip(paths_at(src.root, (span for span, _ in spans)), spans):
        if len(path) < 3:
            continue
        name, holder, node = path[-1], path[-2], path[-3]
        if is_call and name.type == "field_identifier" and holder.type == "selector_expression" \
                and node.type == "call_expression" and node.child_by_field_name("function") == holder:
            calls.append(node)
        elif not is_call and name.type == "type_identifier" and holder.type == "qualified_type" \
                and node.type == "composite_literal" and node.child_by_field_name("type") == holder:
            literals.append(node)
    return calls + literals


# --------------------------------------------------------------------------------------- analysis


class _Acquire:
    """One candidate acquiring call or literal, followed through its function."""

    def __init__(self, ctx, cat: Catalog, gofile, node):
        self.ctx, self.cat, self.gofile, self.node = ctx, cat, gofile, node
        self.scope = None
        self.entry: Entry | None = None
        self.any_release = False
        self.leaks: list = []
        self.reached: set | None = None  # release or hand-off nodes the paths from the acquire reach
        self.lent: set = set()  # escaping closures they reach

    # ---- matching

    def run(self):
        scope = facts.scope_at(self.ctx, self.node)
        if scope is None or scope.node == self.node:
            return None
        self.scope = scope
        entry = self._match()
        if entry is None:
            return None
        if entry.before_go:
            version = self.ctx.go_version(self.gofile.source)
            if version is not None and version >= entry.before_go:
                return None
        self.entry = entry
        return self._analyse()

    @cached_property
    def bindings(self) -> flow.Bindings:
        # Resolving a function's locals walks all of it: done only for a candidate that needs it.
        return flow.bindings(self.ctx, self.scope)

    @cached_property
    def types(self) -> flow.Types:
        return flow.Types(self.ctx, self.scope, self.cat.known)

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
        if name not in cat.method_names:
            # Then only a package function can match (`pkg.Name(...)`, pkg an import no local
            # hides), and most candidates are ruled out without resolving the function's locals.
            path = gofile.import_path(text(operand)) if operand.type == "identifier" else None
            if path is None or (path, name) in cat.non_resources or (path, name) not in cat.functions:
                return None
        if operand.type == "identifier" and self.bindings.resolve(operand) is None:
            path = gofile.import_path(text(operand))
            if path is not None:
                return None if (path, name) in cat.non_resources else cat.functions.get((path, name))
        if name not in cat.method_names:
            return None
        rtype = self.types.of(operand)
        if not rtype:
            return None
        base = rtype.lstrip("*")
        if (base, name) in cat.non_resources:
            return None
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
        self.discarded = False
        if e.parent is not None and self._scoped_parent():
            return None
        if e.kind == "method" and self._stub_receiver():
            return None
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
                if self._drives_listener():
                    return None
                if self.err is not None:
                    # `_, err := net.Dial(...)`: a connection exists only where err is nil; a test that
                    # fails on that path (`if err == nil { t.Fatal(...) }`) leaves nothing to close.
                    self.discarded = True
                    return self._flow()
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
            if self._drives_listener():
                return None
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
        """node index -> strongest event, walking the uses of every handle (aliases found on the way).

        Also noted on the way: the nodes that reset a reused value (`zw.Reset(w)`), the nodes that
        use it otherwise (`zw.Write(p)`), and whether a release sits in a closure registered before
        the acquire (`defer func() { cancel() }()`, `a.onStop(func() { stop() })`): that closure reads
        the variable when it runs, so the acquire is covered (or, for an alias, the assignment that
        fills the variable hands the value to the closure)."""
        events: dict[int, str] = {}
        self.any_release = False
        self.covered_before = False
        self.reset_nodes: set[int] = set()
        self.use_nodes: set[int] = set()
        seen_handles = set()
        queue = [(b, path, None) for b, path in self.handles]
        literals: dict[int, object] = {}
        redefs: list = []
        flows_on: set = set()  # nodes where the value flows into another variable (x = wrap(x))
        while queue:
            b, path, origin = queue.pop()
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
                ev, aliases = self._use_event(use, b, path, self.scope.node, 0, set())
                if ev == REDEF:
                    if n is self.start:
                        continue
                    if lits:
                        ev = HANDOFF
                    else:
                        redefs.append(n)
                        continue
                if aliases:
                    queue.extend((ab, ap, n) for ab, ap in aliases)
                    flows_on.add(n.index)
                    continue
                if ev == RESET:
                    if not lits:
                        self.reset_nodes.add(n.index)
                    continue
                if ev == NEUTRAL:
                    if lits:
                        literals[lits[0].id] = lits[0]
                    else:
                        self.use_nodes.add(n.index)
                    continue
                if ev in (RELEASE, HANDOFF):
                    self.any_release = True
                    if lits and lits[0].start_byte < self.node.start_byte and (
                            n.kind == "defer" or self._closure_escapes(lits[0])):
                        if origin is None:
                            self.covered_before = True
                        else:
                            events[origin.index] = RELEASE
                    if origin is not None and origin.kind == "range" and _inside(use, origin.ast.parent):
                        # released through the range variable of a literal it was put in
                        events[origin.index] = RELEASE
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
                    events.setdefault(n.index, LENT)
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
        """(event, [alias handles]) for one use of handle (b, path)."""
        e = self.entry
        if use in b.defs or any(d.id == use.id for d in b.defs):
            return REDEF, []
        top, fields = flow.selector_chain(use)
        release = e.release
        if path is None:  # a wrapper holding the resource: any release method on it counts
            if any(f in release for f in fields):
                return RELEASE, []
            if fields:
                return (RELEASE if self._wrapper_method_releases(use, b, fields[0]) else NEUTRAL), []
            rem = None
        else:
            k = 0
            while k < len(fields) and k < len(path) and fields[k] == path[k]:
                k += 1
            if k < len(fields) and k < len(path):
                return NEUTRAL, []  # another field: resp.StatusCode
            if len(fields) > len(path):
                rest = fields[len(path):]
                hit = any(".".join(rest[:k]) in release for k in range(1, len(rest) + 1))
                if not hit and e.reset and len(rest) == 1 and rest[0] in e.reset \
                        and flow.value_context(top).kind == "called":
                    return RESET, []
                return (RELEASE if hit else NEUTRAL), []
            rem = tuple(path[len(fields):])
        vc = flow.value_context(top)
        if vc.kind == "called":
            if e.release_call and not rem:
                return RELEASE, []
            return NEUTRAL, []
        return self._value_event(vc, rem, scope_node, depth, seen, top)

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

    def _value_event(self, vc, rem, scope_node, depth, seen, top=None):
        """(event, [alias handles]) for a value arriving at vc. A value put under a key of a struct
        literal held in a local is followed both as the whole (`w.Close()` on a wrapper) and as that
        field (`s.cancel()`); a value put in a literal that is ranged over is followed through the
        range variable (`for _, sub := range []T{{cancel: c}} { sub.cancel() }`)."""
        if vc.kind in ("returned", "sent"):
            return HANDOFF, []
        if vc.wrapped and _external_literal(vc.expr):
            return HANDOFF, []  # inside another package's type: its methods may own it
        if vc.kind == "assigned":
            target = vc.target
            if target is None:
                return NEUTRAL, []
            if target.type != "identifier":
                return HANDOFF, []
            tb = self.bindings.resolve(target) if scope_node == self.scope.node else _resolve_any(self.ctx, target)
            if tb is None or tb.kind == "result":
                return HANDOFF, []
            if tb.scope_node.id != scope_node.id and not _inside(tb.scope_node, scope_node):
                return HANDOFF, []
            aliases = [(tb, None if vc.wrapped else rem)]
            if vc.wrapped and rem is not None and top is not None and len(rem) < _MAX_PATH:
                key = _struct_key(top, vc.expr)
                if key is not None:
                    aliases.append((tb, (key, *rem)))
            return NEUTRAL, aliases
        if vc.kind == "range" and vc.wrapped and rem is not None and top is not None and len(rem) < _MAX_PATH:
            return NEUTRAL, self._range_alias(vc, rem, scope_node, top)
        if vc.kind == "argument":
            return self._argument(vc, rem, depth, seen), []
        return NEUTRAL, []

    def _range_alias(self, vc, rem, scope_node, top) -> list:
        """The range variable that receives an element of the ranged literal holding the value."""
        clause = vc.node
        left = clause.child_by_field_name("left")
        ranged = clause.child_by_field_name("right")
        if left is None or ranged is None or ranged.type != "composite_literal" or vc.expr is None \
                or vc.expr.id != ranged.id or len(left.named_children) < 2:
            return []
        var = left.named_children[1]
        if var.type != "identifier":
            return []
        resolve = self.bindings.resolve if scope_node == self.scope.node else lambda i: _resolve_any(self.ctx, i)
        vb = resolve(var)
        if vb is None:
            return []
        path = _element_path(top, ranged)
        return [] if path is None else [(vb, (*path, *rem))]

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
                ev, aliases = self._value_event(flow.value_context(call), rem, self._scope_node_of(call), depth,
                                                seen, call)
                return HANDOFF if aliases else ev
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
                    ev, aliases = self._value_event(flow.value_context(call), None, self._scope_node_of(call),
                                                    depth, seen, call)
                    return HANDOFF if aliases else ev
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
                ev, aliases = self._use_event(use, b, path, b.scope_node, depth + 1, seen)
                if aliases:
                    queue.extend(aliases)
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
        """Paths from the acquire. States: G (guarded: the resource exists only where the acquire's
        error is nil), L (live, no error guard), F (a reused value not written to yet: it holds
        nothing). A value that is reset (`zw.Reset(w)`) is followed from each reset too, as a new
        life."""
        self._collect_events()
        if self.covered_before:
            return None
        e = self.entry
        events = self.events
        start = self.start
        if start.kind in ("return",):
            return None
        leaks: list[tuple[str, flow.Node]] = []
        handle_bindings = self.handle_ids
        err = self.err
        err_defs = set()
        if err is not None:
            for d in err.defs:
                n = self.g.node_for(d)
                if n is not None and n is not start:
                    err_defs.add(n.index)
        resets = self.reset_nodes if e.reset and self.reset_nodes else set()
        uses = self.use_nodes
        reached, lent = set(), set()
        self._failures: dict[int, str | None] = {}
        origin = [start]

        def transfer(node, st):
            if node is origin[0]:
                if st != "F":
                    leaks.append(("loop", node))
                return None
            if node.index in resets:
                return None  # a new life of the value starts there (followed from there)
            ev = events.get(node.index)
            if ev == RELEASE or ev == HANDOFF:
                reached.add(node.index)
                return None
            if ev == LENT:
                lent.add(node.index)
                return None
            if node.kind == "terminate":
                return None
            if st == "G" and node.kind == "stmt" and self._fails_test(node):
                return None
            if ev == REDEF:
                if st != "F":
                    leaks.append(("overwritten", node))
                return None
            if st == "F" and node.index in uses:
                st = "L"
            if node.kind in ("return", "end"):
                if st != "F":
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
            if e.error_returns_ok and _error_seen(label.cond, label.value):
                return None  # a writer whose write failed: its output is abandoned, trailer or not
            return st

        first = ("F" if resets else "G" if err is not None else "L")
        starts = [(start, first)] + [(self.g.nodes[i], "L") for i in sorted(resets)]
        for node, state in starts:
            origin[0] = node
            if not flow.forward(self.g, node, state, transfer, edge):
                return None
        self.reached, self.lent = reached, lent
        leaks = [lk for lk in leaks if not self._after_exhausted_loop(lk)]
        if e.error_returns_ok:
            leaks = [lk for lk in leaks if not self._returns_error(lk)]
        if not leaks:
            return None
        self.leaks = leaks
        if self.discarded:
            return self._report_discarded("discarded")
        return self._report(leaks)

    # ---- tests that fail where the acquire succeeded

    def _fails_test(self, node) -> bool:
        """Where the acquire's error still tells whether anything was acquired, does this statement
        end the path? An assertion that the error is not nil (`require.Error(t, err)`) does: it fails
        the test where the acquire succeeded. A failure report (`t.Error(...)`) does for a discarded
        result, whose error is its only use (`if err == nil { t.Error("want an error") }`)."""
        kind = self._failures.get(node.index, 0)
        if kind == 0:
            kind = self._failures[node.index] = self._failure_kind(node.ast)
        return kind == "assert" or (kind == "fail" and self.discarded)

    def _failure_kind(self, stmt) -> str | None:
        if stmt is None or stmt.type != "expression_statement" or not stmt.named_children:
            return None
        call = stmt.named_children[0]
        if call.type != "call_expression":
            return None
        fn = call.child_by_field_name("function")
        args = call.child_by_field_name("arguments")
        if fn is None or fn.type != "selector_expression" or args is None:
            return None
        operand = fn.child_by_field_name("operand")
        name = text(fn.child_by_field_name("field"))
        opts = self.ctx.options
        arglist = [a for a in args.named_children if a.type != "comment"]
        if self.err is not None and name in opts.get("error-assertions", ()) and operand is not None \
                and operand.type == "identifier" and self.bindings.resolve(operand) is None \
                and any(a.type == "identifier" and self.bindings.resolve(a) is self.err for a in arglist):
            path = self.gofile.import_path(text(operand))
            if path is not None and (path in opts.get("assertion-packages", ())
                                     or (arglist and self._is_testing(arglist[0]))):
                return "assert"
        if name in opts.get("test-failures", ()) and self._is_testing(operand):
            return "fail"
        return None

    def _is_testing(self, expr) -> bool:
        if expr is None or expr.type != "identifier":
            return False
        t = self.types.of(expr)
        return bool(t) and t in self.ctx.options.get("testing-types", ())

    # ---- values whose life something else bounds

    def _scoped_parent(self) -> bool:
        """The parent context argument ends when this function returns (`t.Context()`, a handler's
        `r.Context()`, a served gRPC stream's `stream.Context()`): the child is cancelled with it."""
        args = self.node.child_by_field_name("arguments")
        if args is None:
            return False
        xs = [a for a in args.named_children if a.type != "comment"]
        if self.entry.parent >= len(xs):
            return False
        expr = xs[self.entry.parent]
        for _ in range(4):  # through locals that are assigned once: ctx := t.Context()
            while expr.type == "parenthesized_expression" and expr.named_children:
                expr = expr.named_children[0]
            if expr.type != "identifier":
                break
            b = self.bindings.resolve(expr)
            if b is None or b.defs or b.value is None or b.kind not in ("short", "var") or b.call_index > 0:
                return False
            expr = b.value
        if expr.type != "call_expression":
            return False
        fn = expr.child_by_field_name("function")
        if fn is None or fn.type != "selector_expression":
            return False
        method = text(fn.child_by_field_name("field"))
        rows = [r for r in self.cat.scoped_contexts if r[2] == method]
        if not rows:
            return False
        operand = fn.child_by_field_name("operand")
        t = self.types.of(operand)
        if not t:
            return False
        t = re.sub(r"\[.*\]$", "", t).lstrip("*")
        ob = self.bindings.resolve(operand) if operand.type == "identifier" else None
        decl = self.scope.declaration
        for receivers, rx, _, param, handler in rows:
            if t not in {r.lstrip("*") for r in receivers} and not (rx is not None and rx.search(t)):
                continue
            if (param or handler) and (ob is None or ob.kind != "param" or ob.scope_node.id != decl.node.id):
                continue
            if handler and not decl.framework:
                continue
            return True
        return False

    def _stub_receiver(self) -> bool:
        """In test code, a client built here whose transport makes its responses itself
        (`&http.Client{Transport: rtFunc(func(r) { return &http.Response{...}, nil })}`)."""
        rows = self.cat.stubs
        if not rows:
            return False
        fn = self.node.child_by_field_name("function")
        operand = fn.child_by_field_name("operand") if fn is not None else None
        t = self.types.of(operand) if operand is not None else None
        found = rows.get((t or "").lstrip("*"))
        if not found or not facts.is_test_code(self.gofile):
            return False
        lit = self._local_literal(operand)
        if lit is None:
            return False
        for field_name, makes, method in found:
            value = _keyed_value(lit, field_name)
            if value is not None and self._makes(value, makes, method):
                return True
        return False

    def _local_literal(self, expr):
        """The composite literal a local was built from (through `&`, parentheses, single assignments)."""
        for _ in range(4):
            while expr is not None and (expr.type == "parenthesized_expression" or (
                    expr.type == "unary_expression"
                    and text(expr.child_by_field_name("operator") or expr.children[0]) == "&")):
                expr = expr.named_children[-1] if expr.named_children else None
            if expr is None:
                return None
            if expr.type == "composite_literal":
                return expr
            if expr.type != "identifier":
                return None
            b = self.bindings.resolve(expr)
            if b is None or b.defs or b.value is None or b.call_index > 0:
                return None
            expr = b.value
        return None

    def _makes(self, value, makes: str, method: str) -> bool:
        """value (or a local it names, or a type of this package it is) builds a `makes` literal."""
        if "." not in makes:
            return False
        pkg, name = makes.rsplit(".", 1)
        if self._builds(self.gofile, value, pkg, name):
            return True
        if value.type == "identifier":
            b = self.bindings.resolve(value)
            if b is not None and not b.defs and b.value is not None and self._builds(self.gofile, b.value, pkg, name):
                return True
        vt = self.types.of(value)
        base = (vt or "").lstrip("*")
        if base and "." not in base and method:
            m = self.ctx.package.method(base, method)
            if m is not None and m.body is not None and self._builds(m.file, m.body, pkg, name):
                return True
        return False

    @staticmethod
    def _builds(gofile, node, pkg: str, name: str) -> bool:
        aliases = [a for a, p in gofile.imports.items() if p == pkg]
        data = node.text
        return any(re.search(rb"\b" + re.escape(a.encode()) + rb"\." + re.escape(name.encode()) + rb"\s*\{", data)
                   for a in aliases)

    def _drives_listener(self) -> bool:
        """A request fired at the address of a listener this function accepts on itself
        (`go http.Get("http://" + ln.Addr().String())`, then `ln.Accept()`): the function plays the
        server, and no response exists unless it writes one."""
        args = self.node.child_by_field_name("arguments")
        if args is None or b".Addr()" not in args.text:
            return False
        for call in walk(args):
            if call.type != "call_expression":
                continue
            fn = call.child_by_field_name("function")
            if fn is None or fn.type != "selector_expression" or text(fn.child_by_field_name("field")) != "Addr":
                continue
            operand = fn.child_by_field_name("operand")
            b = self.bindings.resolve(operand) if operand is not None and operand.type == "identifier" else None
            if b is None:
                continue
            for use in b.uses:
                top, fields = flow.selector_chain(use)
                if fields == ["Accept"] and flow.value_context(top).kind == "called":
                    return True
        return False

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
        """(invalid when true, invalid when false), through parentheses, `!`, `&&` and `||`
        evaluated with an explicit stack (a condition may chain thousands of terms)."""
        out: dict[int, tuple[bool, bool]] = {}
        stack = [(cond, False)]
        while stack:
            node, done = stack.pop()
            kids = _logical_parts(node)
            if kids is None:
                out[node.id] = self._leaf_facts(node, guarded, handles)
            elif not done:
                stack.append((node, True))
                stack.extend((k, False) for k in kids)
            elif node.type == "binary_expression":
                (lt, lf), (rt, rf) = out[kids[0].id], out[kids[1].id]
                if text(node.child_by_field_name("operator")) == "&&":
                    out[node.id] = (lt or rt, lf and rf)
                else:
                    out[node.id] = (lt and rt, lf or rf)
            elif node.type == "unary_expression":
                a_, b_ = out[kids[0].id]
                out[node.id] = (b_, a_)
            else:
                out[node.id] = out[kids[0].id]
        return out[cond.id]

    def _leaf_facts(self, cond, guarded, handles) -> tuple[bool, bool]:
        t = cond.type
        if t == "binary_expression":
            op = text(cond.child_by_field_name("operator"))
            left, right = cond.child_by_field_name("left"), cond.child_by_field_name("right")
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
        return self._grading()[0]

    def _grading(self) -> tuple[str | None, str | None]:
        """(level, how the leak grows or None). Note in test code, main() and scripts (a file built
        only with `go run`, `//go:build ignore`); error where every run of the code leaves one more
        behind: the acquire is in a loop (or a per-item callback such as filepath.WalkDir's) and is
        never released there, or it is in an HTTP handler or a function serving one connection."""
        hit = getattr(self, "_graded", None)
        if hit is not None:
            return hit
        self._graded = hit = self._grade()
        return hit

    def _grade(self):
        e, scope = self.entry, self.scope
        if e.level:
            return e.level, None
        if facts.is_test_code(self.gofile):
            return self.ctx.options.get("test-level", "note"), None
        decl = scope.declaration
        if decl.function is not None and decl.name == "main" and self.gofile.package == "main":
            return "note", None
        if _is_script(self.gofile.source.data, self.ctx.options.get("script-build-tags", ())):
            return "note", None
        conn_types = set(self.ctx.options.get("connection-types", []))
        callbacks = set(self.ctx.options.get("per-item-callbacks", []))
        reached = self.reached
        never = not (reached or self.lent) if reached is not None else not self.any_release
        per_iteration = never or any(k == "loop" for k, _ in self.leaks)
        s, anchor = scope, self.node
        while s is not None:
            if per_iteration and _iterating_loops(anchor, s):
                return "error", "on every loop iteration"
            if per_iteration and s.is_literal and callbacks:
                vc = flow.value_context(s.node)
                if vc.kind == "argument":
                    path, name = facts.call_name(s.file, vc.node)
                    if path and f"{path}.{name}" in callbacks:
                        return "error", f"for every item {name} visits"
            if s.framework:
                return "error", "on every request this handler serves"
            if any(p.type in conn_types for p in s.params):
                return "error", "on every connection this function serves"
            s, anchor = s.parent, s.node  # a function literal run in a loop runs per iteration
        if never:
            growth = self._caller_growth()
            if growth:
                return "error", growth
        return None, None

    def _caller_growth(self) -> str | None:
        """A function that leaks on every call, called by code of this package in a loop or in an
        HTTP handler: the leak grows with the items or the requests. One level of callers, in this
        package only (test code left out): a caller in another package is not visible."""
        decl = self.scope
        fn = decl.function
        if fn is None or decl.parent is not None or not fn.name or fn.name == "main":
            return None
        name = fn.name
        needle = name.encode() + b"("
        q = ("(call_expression function: [(identifier) @n (selector_expression field: (field_identifier) @n)] "
             f'(#eq? @n "{name}")) @call')
        for gofile in self.ctx.package.files:
            if needle not in gofile.source.data or facts.is_test_code(gofile):
                continue
            for call in parsing.captures("go", q, gofile.source.root).get("call", []):
                cs = facts.scope_at(self.ctx, call)
                if cs is None or cs.declaration is decl:
                    continue
                callee = call.child_by_field_name("function")
                if fn.receiver:
                    if callee.type != "selector_expression":
                        continue
                    t = flow.Types(self.ctx, cs, self.cat.known).of(callee.child_by_field_name("operand"))
                    if not t or t.lstrip("*") != fn.receiver:
                        continue
                elif callee.type != "identifier" or flow.bindings(self.ctx, cs).resolve(callee) is not None:
                    continue
                caller = cs.declaration.name
                s, anchor = cs, call
                while s is not None:
                    if _iterating_loops(anchor, s):
                        return f"on every call ({caller} calls it in a loop, line {call.start_point[0] + 1})"
                    if s.framework:
                        return f"on every call ({caller} calls it for every request it serves)"
                    s, anchor = s.parent, s.node
        return None

    def _leaves_or_repeats(self) -> bool:
        """Does a path from the acquire leave the function or come back to the acquire?"""
        start = self.start
        found = []

        def transfer(node, st):
            if node is start and start.kind == "range":
                return None  # the range expression is evaluated once
            if node is start or node.kind in ("return", "end", "exit"):
                found.append(node)
                return None
            return None if node.kind == "terminate" else st

        flow.forward(self.g, start, 0, transfer)
        return bool(found) or start.kind in ("return",)

    def _consequence(self) -> str:
        growth = self._grading()[1]
        c = self.entry.consequence
        return f"{c}, and it happens again {growth}" if growth else c

    def _finding(self, message, related=()):
        return self.ctx.finding(self.gofile.source, self.node, message, level=self._level(),
                                related=related, function=self.scope.name)

    def _report_discarded(self, how):
        if not self.discarded and not self._leaves_or_repeats():
            return None  # the function never ends after it and never runs it again: nothing piles up
        e = self.entry
        what = f"{e.what} from {self._callee()}"
        if how == "discarded":
            msg = (f"{what} is discarded without being {e.verb}: {self._consequence()}; keep it in a variable "
                   f"and add {self._fix()}.")
        elif how == "chained":
            msg = (f"{what} is used once and never {e.verb}: {self._consequence()}; keep it in a variable "
                   f"and add {self._fix()}.")
        else:
            msg = (f"{what} is passed on but never {e.verb}: {self._consequence()}; keep it in a variable "
                   f"and add {self._fix()}.")
        return self._finding(msg)

    def _report(self, leaks):
        """One wording for one kind of leak: "is never <verb>" when no path from the acquire
        releases it, "is not <verb> on the path through line N: ..." when some do."""
        e = self.entry
        what = f"{e.what} from {self._callee()}"
        v = self._var()
        src = self.gofile.source
        after = "after checking the error" if self.err is not None else "after creating it"
        if not self.reached:
            return self._finding(f"{what} is never {e.verb}: {self._consequence()}; add {self._fix()} {after}.")
        related = []
        first = None
        for kind, node in sorted(leaks, key=lambda x: x[1].ast.start_byte if x[1].ast is not None else 0):
            line = node.ast.start_point[0] + 1
            if kind == "exit" and node.kind == "return":
                related.append((src, node.ast, f"returns here without {_gerund(e.verb)} {v}"))
                first = first or (line, f"the function returns there without {_gerund(e.verb)} {v}")
            elif kind == "exit":
                related.append((src, node.ast, f"the function ends here without {_gerund(e.verb)} {v}"))
                first = first or (line, f"the function ends there without {_gerund(e.verb)} {v}")
            elif kind == "overwritten":
                related.append((src, node.ast, f"{v} is overwritten here without being {e.verb}"))
                first = first or (line, f"{v} is overwritten there without being {e.verb}")
            else:
                loops = _iterating_loops(self.node, self.scope) or facts.loops_between(self.node, self.scope)
                at = loops[0] if loops else self.node
                first = first or (at.start_point[0] + 1,
                                  f"the next iteration acquires another one before {v} is {e.verb}")
        related = related[:_MAX_RELATED]
        line, detail = first
        return self._finding(f"{what} is not {e.verb} on the path through line {line}: {detail}; "
                             f"{self._consequence()}; add {self._fix()} right {after}.", related)


_BUILD_LINE = re.compile(rb"(?m)^//go:build\s+([A-Za-z0-9_.]+)\s*$")


def _is_script(data: bytes, tags) -> bool:
    """A file built only with a tag that marks scripts and tools (`//go:build ignore`, run with
    `go run build.go`): its leaks end with the command."""
    end = data.find(b"\npackage ")
    m = _BUILD_LINE.search(data, 0, len(data) if end == -1 else end)
    return m is not None and m.group(1).decode() in tags


def _iterating_loops(node, scope) -> list:
    """The for statements around node (inside scope's body) that run it on every iteration: node is
    in the body, the condition or the post statement, not in the range expression or the init
    statement, which run once."""
    out = []
    for loop in facts.loops_between(node, scope):
        body = loop.child_by_field_name("body")
        if body is not None and _inside(node, body):
            out.append(loop)
            continue
        clause = next((c for c in loop.named_children if c.type == "for_clause"), None)
        if clause is not None and any(x is not None and _inside(node, x) for x in (
                clause.child_by_field_name("condition"), clause.child_by_field_name("update"))):
            out.append(loop)
        elif clause is None and not any(c.type == "range_clause" for c in loop.named_children) \
                and (body is None or not _inside(node, body)):
            out.append(loop)  # `for cond {`: the condition runs on every iteration
    return out


def _idents(node):
    if node is None:
        return []
    return [n for n in walk(node) if n.type == "identifier"]


def _value_parent(node):
    """The node holding node's value, through parentheses and `&`."""
    p = node.parent
    while p is not None and (p.type == "parenthesized_expression" or (
            p.type == "unary_expression" and text(p.child_by_field_name("operator") or p.children[0]) == "&")):
        p = p.parent
    return p


def _keyed_in(node):
    """(key name, literal_value) when node is the value of `key: node` in a struct literal."""
    p = _value_parent(node)
    if p is None or p.type != "literal_element":
        return None
    k = p.parent
    if k is None or k.type != "keyed_element" or len(k.named_children) != 2 or k.named_children[1].id != p.id:
        return None
    key = k.named_children[0]
    if key.type == "literal_element" and key.named_children:
        key = key.named_children[0]
    if key.type not in ("identifier", "field_identifier"):
        return None
    lv = k.parent
    return (text(key), lv) if lv is not None and lv.type == "literal_value" else None


def _same(a, b) -> bool:
    return a is not None and b is not None and a.id == b.id


def _struct_key(top, outer):
    """`S{cancel: top}` or `&S{cancel: top}` where that literal is `outer`: the key ("cancel")."""
    hit = _keyed_in(top)
    if hit is None:
        return None
    key, lv = hit
    lit = lv.parent
    if lit is None or lit.type != "composite_literal":
        return None
    holder = lit.parent if lit.parent is not None and lit.parent.type == "unary_expression" else lit
    return key if _same(lit, outer) or _same(holder, outer) else None


def _element_path(top, ranged):
    """The field path of top in one element of the ranged literal: () for `[]F{top}`, ("cancel",)
    for `[]T{{cancel: top}}` or `[]*T{&T{cancel: top}}`; None for another shape."""
    p = _value_parent(top)
    if p is not None and p.type == "literal_element" and _same(p.parent, ranged.child_by_field_name("body")):
        return ()
    hit = _keyed_in(top)
    if hit is None:
        return None
    key, lv = hit
    up = lv.parent
    if up is not None and up.type == "composite_literal":
        up = _value_parent(up)
    if up is not None and up.type == "literal_element" and _same(up.parent, ranged.child_by_field_name("body")):
        return (key,)
    return None


_ERR_NAME = re.compile(r"(?i)err")


def _logical_parts(node):
    """The operands of a parenthesized expression, a `!`, or a `&&`/`||`; None for anything else."""
    if node is None:
        return None
    t = node.type
    if t == "parenthesized_expression" and node.named_children:
        return [node.named_children[0]]
    if t == "unary_expression" and text(node.child_by_field_name("operator") or node.children[0]) == "!":
        operand = node.child_by_field_name("operand")
        return [operand] if operand is not None else None
    if t == "binary_expression" and text(node.child_by_field_name("operator")) in ("&&", "||"):
        left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
        return [left, right] if left is not None and right is not None else None
    return None


def _error_seen(cond, value: bool) -> bool:
    """This branch outcome means an error happened: `err != nil` true, `err == nil` false (through
    parentheses, `!`, a true `&&` and a false `||`; iteratively)."""
    stack = [(cond, value)]
    while stack:
        node, v = stack.pop()
        if node is None:
            continue
        t = node.type
        if t == "parenthesized_expression" and node.named_children:
            stack.append((node.named_children[0], v))
            continue
        if t == "unary_expression" and text(node.child_by_field_name("operator") or node.children[0]) == "!":
            stack.append((node.child_by_field_name("operand"), not v))
            continue
        if t != "binary_expression":
            continue
        op = text(node.child_by_field_name("operator"))
        left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
        if (op == "||" and not v) or (op == "&&" and v):
            stack += [(left, v), (right, v)]
            continue
        if op not in ("==", "!=") or left is None or right is None:
            continue
        other = left if right.type == "nil" else right if left.type == "nil" else None
        if other is not None and other.type == "identifier" and _ERR_NAME.search(text(other)) \
                and (v if op == "!=" else not v):
            return True
    return False


def _keyed_value(lit, name: str):
    """The value under key `name` in a composite literal (`Transport: x` -> x)."""
    body = lit.child_by_field_name("body")
    for kv in (body.named_children if body is not None else []):
        if kv.type != "keyed_element" or len(kv.named_children) != 2:
            continue
        key, value = kv.named_children
        if key.type == "literal_element" and key.named_children:
            key = key.named_children[0]
        if text(key) == name:
            if value.type == "literal_element" and value.named_children:
                value = value.named_children[0]
            return value
    return None


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
