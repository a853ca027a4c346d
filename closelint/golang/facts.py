"""Per-function facts of a Go package, computed once per unit and shared by every Go rule.

    scopes = facts.scopes(ctx)           # every function body: declarations and function literals
    scope = facts.enclosing(ctx, node)   # the innermost function body around a node
    facts.loops_between(node, scope)     # for statements between node and its function body
    facts.is_terminator(gofile, call)    # panic, os.Exit, log.Fatal*, t.Fatal*, FailNow, Goexit...
    facts.local_types(ctx, scope)        # variable -> qualified type text, from what the syntax shows
    facts.receiver_type(ctx, scope, expr)  # the type of `x`, `s.db`, `http.DefaultClient` where knowable

Everything is syntactic: no type checker, so where a type cannot be known the answer is None and a
rule must not guess (precision first).
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator
from itertools import islice


from closelint.golang.package import Function, GoFile, Param, handler_framework, params_of, receiver_of, specs_of
from closelint.treeutil import ancestors, needle_spans, paths_at, text, word_spans

FUNC_NODES = ("function_declaration", "method_declaration", "func_literal")
LOOP_NODES = ("for_statement",)

# Calls after which a path does not continue (no leak is reported on it).
_TERMINATOR_FUNCS = {
    ("", "panic"),
    ("os", "Exit"),
    ("runtime", "Goexit"),
    ("log", "Fatal"), ("log", "Fatalf"), ("log", "Fatalln"),
    ("log", "Panic"), ("log", "Panicf"), ("log", "Panicln"),
}
# Methods that end a path whatever the receiver: testing's t.Fatal family, loggers' Fatal family.
_TERMINATOR_METHODS = re.compile(r"^(Fatal|Fatalf|Fatalln|Panic|Panicf|Panicln|FailNow|SkipNow|Skip|Skipf|Exit)$")

# Values whose type the standard library fixes.
KNOWN_GLOBALS = {
    "net/http.DefaultClient": "*net/http.Client",
    "net/http.DefaultTransport": "net/http.RoundTripper",
    "os.Stdin": "*os.File", "os.Stdout": "*os.File", "os.Stderr": "*os.File",
}


_UNSET = object()


class Scope:
    """One function body: a declaration (function set) or a function literal.

    Parameters, results and the handler shape are read on first use: a package has thousands of
    scopes and a rule looks at few of them."""

    def __init__(self, node, file: GoFile, name: str, function: Function | None = None,
                 parent: "Scope | None" = None):
        self.node = node
        self.file = file
        self.name = name
        self.function = function  # for declarations
        self.parent = parent  # for literals: the scope they appear in
        # The outermost scope, kept rather than climbed to: literals nest thousands deep in bad input.
        self.declaration: Scope = parent.declaration if parent is not None else self
        self._params = self._results = None
        self._framework = _UNSET
        self._types: dict | None = None

    def __repr__(self):
        return f"Scope({self.name})"

    @property
    def params(self) -> list[Param]:
        if self._params is None:
            self._params = (self.function.params if self.function is not None
                            else params_of(self.node.child_by_field_name("parameters"), self.file))
        return self._params

    @property
    def results(self) -> list[Param]:
        if self._results is None:
            self._results = (self.function.results if self.function is not None
                             else params_of(self.node.child_by_field_name("result"), self.file))
        return self._results

    @property
    def framework(self) -> str | None:
        """'net/http', 'caddy', 'gin', 'echo' or 'fiber' when shaped like a request handler."""
        if self._framework is _UNSET:
            fn = self.function
            self._framework = handler_framework(self.params, fn.name if fn else "", bool(fn and fn.receiver))
        return self._framework

    @framework.setter
    def framework(self, value):
        self._framework = value

    @property
    def body(self):
        return self.node.child_by_field_name("body")

    @property
    def is_literal(self) -> bool:
        return self.node.type == "func_literal"

    @property
    def receiver(self) -> str:
        fn = self.declaration.function
        return fn.receiver if fn else ""

    @property
    def receiver_name(self) -> str:
        fn = self.declaration.function
        return fn.receiver_name if fn else ""


def scopes(ctx) -> list[Scope]:
    """Every function body of the package's files (declarations and literals), once per unit."""
    full = ctx.shared.get("go.scopes")
    if full is None:
        index = _scope_index(ctx)
        for gofile in ctx.package.files:
            file_scopes(ctx, gofile)
        # by_id: function node id -> Scope, complete once scopes() has run (scope_at() is the lazy way).
        full = ctx.shared["go.scopes"] = {"list": sorted(index["by_id"].values(), key=_scope_order),
                                          "by_id": index["by_id"]}
    return full["list"]


def file_scopes(ctx, gofile: GoFile) -> list[Scope]:
    """Every function body of one file, built on demand (parses that file only)."""
    index = _scope_index(ctx)
    key = ("file", id(gofile))
    if key not in index["done"]:
        index["done"].add(key)
        for top in gofile.source.root.named_children:
            if top.type in ("function_declaration", "method_declaration", "var_declaration", "const_declaration"):
                _top_level_scopes(index, gofile, top)  # a var's literals are scopes too
    return sorted((s for s in index["by_id"].values() if s.file is gofile), key=_scope_order)


def _scope_order(scope: "Scope"):
    return (str(scope.file.path), scope.node.start_byte, -scope.node.end_byte)


def _scope_index(ctx) -> dict:
    index = ctx.shared.get("go.scopes.index")
    if index is None:
        pkg = ctx.package
        index = ctx.shared["go.scopes.index"] = {
            "by_id": {}, "done": set(), "package": pkg}
    return index


def _literals_in(gofile: GoFile, top) -> list:
    """The function literals inside a top-level declaration, outer ones first, found from the `func`
    keywords of its text (a query would visit every node of the file)."""
    keywords = word_spans(gofile.source.data, b"func", top.start_byte + 1, top.end_byte)
    out = []
    for path in paths_at(gofile.source.root, keywords):
        if len(path) >= 2 and path[-1].type == "func" and path[-2].type == "func_literal":
            out.append(path[-2])
    return out


def innermost_function(path: list, below: int = 0):
    """The innermost function declaration or literal of a root-first path, skipping its last `below`
    nodes (scanned from the end: the path may be thousands of nodes long)."""
    for i in range(len(path) - 1 - below, -1, -1):
        if path[i].type in FUNC_NODES:
            return path[i]
    return None


def scope_at(ctx, node) -> Scope | None:
    """The innermost function (declaration or literal) around node, or node itself when it is one.

    Scopes are built per top-level declaration, on demand: a rule that looks at a few functions of a
    large package does not pay for all of them, and a literal's name (`Server.run.func2`) depends only
    on its declaration, never on which rule asked first."""
    func = node if node.type in FUNC_NODES else next((a for a in ancestors(node) if a.type in FUNC_NODES), None)
    if func is None:
        return None
    index = _scope_index(ctx)
    hit = index["by_id"].get(func.id)
    if hit is not None:
        return hit
    top, root = func, None
    for anc in ancestors(func):
        if anc.type == "source_file":
            root = anc
            break
        top = anc
    gofile = _file_with_root(index["package"], root) if root is not None else None
    if gofile is None:
        return None
    _top_level_scopes(index, gofile, top)
    return index["by_id"].get(func.id)


def _file_with_root(pkg, root) -> GoFile | None:
    """The package file whose tree root is root (only parsed files can hold a node)."""
    for gf in pkg.files:
        if gf.source._tree is not None and gf.source.root.id == root.id:
            return gf
    return None


def scope_by_id(ctx, node_id: int) -> Scope | None:
    """A scope already built (by scope_at, file_scopes or scopes), by its function node's id."""
    return _scope_index(ctx)["by_id"].get(node_id)


def enclosing(ctx, node) -> Scope | None:
    """The innermost function (declaration or literal) whose body holds node."""
    func = next((a for a in ancestors(node) if a.type in FUNC_NODES), None)
    return scope_at(ctx, func) if func is not None else None


def _top_level_scopes(index: dict, gofile: GoFile, top) -> None:
    """Scopes of one top-level declaration and the function literals inside it."""
    if top.id in index["done"]:
        return
    index["done"].add(top.id)
    by_id = index["by_id"]
    literals = _literals_in(gofile, top)
    nodes = [top, *literals] if top.type in ("function_declaration", "method_declaration") else literals
    count = 0
    open_scopes: list[Scope] = []  # the scopes around the current node, by byte range (no parent climbs)
    for node in nodes:
        while open_scopes and open_scopes[-1].node.end_byte <= node.start_byte:
            open_scopes.pop()
        if node.type == "func_literal":
            parent = open_scopes[-1] if open_scopes else None
            base = parent.declaration.name if parent else "init"
            count += 1
            scope = Scope(node, gofile, f"{base}.func{count}", parent=parent)
        else:
            fn = index["package"].function_at(node)
            if fn is None:  # not a declaration of the package's files
                fn = Function(text(node.child_by_field_name("name")), node, gofile)
                if node.type == "method_declaration":
                    fn.receiver, fn.receiver_name = receiver_of(node, gofile)
            scope = Scope(node, gofile, fn.qualname, function=fn)
        open_scopes.append(scope)
        by_id[node.id] = scope


# Packages that exist to support tests: their code runs in tests only, whatever the file is named.
_TEST_SUPPORT_PACKAGE = re.compile(
    r"(^|_)(test|tests|testing|testutil|testutils|testhelper|testhelpers|mock|mocks|fake|fakes|e2e|"
    r"fixtures|testdata)$|test$|testing$|testutils?$|^mock|^fake")
_TEST_IMPORTS = ("testing", "net/http/httptest", "github.com/stretchr/testify/require",
                 "github.com/stretchr/testify/assert")


def is_test_code(gofile: GoFile) -> bool:
    """Test code: a _test.go file, a test-support package (testutil, mocks, e2e...), or a file that
    imports testing/httptest/testify. (Folder names are not used: where the project's root is cannot be
    known without a build, and a checkout's own path may hold `tests/`.) Rules report in it at a lower level (leaks die with the test)."""
    if gofile.path.name.endswith("_test.go") or gofile.package.endswith("_test"):
        return True
    if _TEST_SUPPORT_PACKAGE.search(gofile.package or ""):
        return True
    return any(p in _TEST_IMPORTS for p in gofile.imports.values())


def loops_between(node, scope: Scope) -> list:
    """The for statements around node inside scope's own body (not across function literals)."""
    out = []
    for anc in ancestors(node):
        if anc is scope.node or anc.type in FUNC_NODES:
            break
        if anc.type in LOOP_NODES:
            out.append(anc)
    return out


def call_name(gofile: GoFile, call) -> tuple[str, str]:
    """(import path or "", name) for `pkg.F(...)` / `F(...)`; ("", "") for method calls on values."""
    fn = call.child_by_field_name("function")
    if fn is None:
        return "", ""
    if fn.type == "identifier":
        return "", text(fn)
    if fn.type == "selector_expression":
        operand = fn.child_by_field_name("operand")
        if operand is not None and operand.type == "identifier":
            path = gofile.import_path(text(operand))
            if path is not None:
                return path, text(fn.child_by_field_name("field"))
    return "", ""


def is_terminator(gofile: GoFile, call) -> bool:
    """A call after which the path does not go on: panic, os.Exit, log.Fatal*, t.Fatal*, FailNow..."""
    if call is None or call.type != "call_expression":
        return False
    pkg, name = call_name(gofile, call)
    if (pkg, name) in _TERMINATOR_FUNCS:
        return True
    fn = call.child_by_field_name("function")
    if fn is not None and fn.type == "selector_expression" and not pkg:
        return bool(_TERMINATOR_METHODS.match(text(fn.child_by_field_name("field"))))
    return False


def local_types(ctx, scope: Scope) -> dict[str, str]:
    """name -> qualified type for what the syntax of scope (and its enclosing scopes) shows:
    parameters, receivers, `var x T`, `x := &T{}`, `x := T{}`, `x := new(T)`, `x := (*T)(y)`."""
    if scope._types is not None:
        return scope._types
    chain = []  # the scopes still to compute, innermost first (iterative: literals nest deeply)
    s = scope
    while s is not None and s._types is None:
        chain.append(s)
        s = s.parent
    inherited = s._types if s is not None else {}
    for s in reversed(chain):
        inherited = s._types = _own_types(s, inherited)
    return scope._types


def own_tokens(scope: Scope, *tokens: str) -> Iterator[list]:
    """Paths from scope's body down to each of the tokens (`:=`, `<-`, `var`) in it, nested function
    literals excluded, in document order: path[-1] is the token, path[-2] the node it belongs to.

    Found from the file's bytes: a walk visits every node of the body, and the rules ask this of
    many bodies in which the token is rare."""
    body = scope.body
    if body is None:
        return
    data = scope.file.source.data
    streams = [_token_spans(data, t.encode(), body.start_byte, body.end_byte) for t in tokens]
    spans = heapq.merge(*streams) if len(streams) > 1 else streams[0]
    for path in paths_at(body, spans):
        if path[-1].type in tokens and not any(n.type == "func_literal" for n in islice(path, 1, len(path) - 1)):
            yield path


def _token_spans(data: bytes, token: bytes, start: int, end: int):
    if token.isalpha():  # a keyword: a whole word only
        return word_spans(data, token, start, end)
    return needle_spans(data, token, start, end)


def _own_types(scope: Scope, inherited: dict) -> dict[str, str]:
    types = dict(inherited)
    fn = scope.function
    if fn is not None and fn.receiver_name:
        recv_decl = fn.node.child_by_field_name("receiver")
        recv = params_of(recv_decl, fn.file)
        if recv:
            types[recv[0].name] = recv[0].type
    for p in [*scope.params, *scope.results]:
        if p.name and p.name != "_":
            types[p.name] = p.type.removeprefix("...")
    gofile = scope.file
    for path in own_tokens(scope, "var", ":="):
        node = path[-2]
        if node.type == "var_declaration":
            for spec in specs_of(node, "var_spec"):
                t = spec.child_by_field_name("type")
                if t is not None:
                    for n in spec.children_by_field_name("name"):
                        types[text(n)] = gofile.qualify(t)
        elif node.type == "short_var_declaration":
            left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
            if left is None or right is None:
                continue
            lhs, rhs = left.named_children, right.named_children
            if len(lhs) == len(rhs):
                for name_node, value in zip(lhs, rhs):
                    t = expression_type(gofile, value)
                    if t:
                        types[text(name_node)] = t
    return types


def expression_type(gofile: GoFile, expr) -> str | None:
    """The type an expression has on its face: &T{}, T{}, new(T), (*T)(x), or a known global."""
    if expr is None:
        return None
    if expr.type == "unary_expression" and text(expr.child_by_field_name("operator") or expr.children[0]) == "&":
        inner = expr.child_by_field_name("operand")
        if inner is not None and inner.type == "composite_literal":
            t = inner.child_by_field_name("type")
            return "*" + gofile.qualify(t) if t is not None else None
    if expr.type == "composite_literal":
        t = expr.child_by_field_name("type")
        return gofile.qualify(t) if t is not None else None
    if expr.type == "call_expression":
        fn = expr.child_by_field_name("function")
        args = expr.child_by_field_name("arguments")
        if fn is not None and text(fn) == "new" and args is not None and args.named_children:
            return "*" + gofile.qualify(args.named_children[0])
        if fn is not None and fn.type == "parenthesized_expression":  # (*T)(x) conversion
            return gofile.qualify(text(fn)[1:-1])
    if expr.type == "selector_expression":
        qualified = gofile.qualify(text(expr))
        return KNOWN_GLOBALS.get(qualified)
    return None


def global_type(ctx, name: str) -> str | None:
    """The type of a package-level variable: declared (`var db *sql.DB`) or on the face of its value."""
    glob = ctx.package.globals.get(name)
    if glob is None:
        return None
    gf, spec = glob
    tnode = spec.child_by_field_name("type")
    if tnode is not None:
        return gf.qualify(tnode)
    value = spec.child_by_field_name("value")
    if value is not None and value.named_children:
        return expression_type(gf, value.named_children[0])
    return None


def receiver_type(ctx, scope: Scope, expr) -> str | None:
    """The type of a receiver expression where the syntax tells it: a local or parameter, a field of
    a struct the package declares (`s.db`), a package-level variable, or a known global."""
    if expr is None:
        return None
    gofile = scope.file
    if expr.type == "identifier":
        name = text(expr)
        t = local_types(ctx, scope).get(name)
        if t:
            return t
        return global_type(ctx, name)
    if expr.type == "selector_expression":
        known = expression_type(gofile, expr)
        if known:
            return known
        base = receiver_type(ctx, scope, expr.child_by_field_name("operand"))
        if base:
            struct = base.lstrip("*")
            if "." not in struct:  # a type of this package
                return ctx.package.field_type(struct, text(expr.child_by_field_name("field")))
        return None
    if expr.type == "parenthesized_expression" and expr.named_children:
        return receiver_type(ctx, scope, expr.named_children[0])
    return expression_type(gofile, expr)
