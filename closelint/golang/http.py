"""Request-lifecycle facts of a Go package's HTTP servers, shared by CL102 and CL104.

    hf = http.facts(ctx)                       # computed once per unit
    hf.info(scope)                             # handler or request function? framework? test code?
    hf.classify(scope, expr, tables)           # what an expression is: a server request, its body, a
                                               # limited reader, a multipart form or reader, a gin/echo
                                               # context, a parameter a helper reads...
    hf.callers(function_node)                  # in-package call sites of a function or method
    hf.signals                                 # package-wide: limiting or cleaning middleware, routers
                                               # and wrappers that hand handlers a copy of the request
    hf.fold(expr, scope)                       # constant folding: 32 << 20, named consts of the package

The request a handler receives is followed through local variables (`req := r`, `r2 :=
r.WithContext(ctx)`, `c.Request`, `c.Request()`), its body through readers that wrap it (`gz, _ :=
gzip.NewReader(r.Body)`) and the limits put on it (`r.Body = http.MaxBytesReader(w, r.Body, n)`,
`io.LimitReader(r.Body, n)`, `&io.LimitedReader{R: r.Body}`). Bindings are flow-insensitive but
ordered: only assignments written before a use count, and where branches disagree the answer that
reports nothing wins (any limit makes a body limited).

What should move to the shared flow model later (closelint/golang/flow.py): the per-scope bindings
(`bindings`), the name lookup through enclosing literals (`_lookup`) and the call graph (`callers`).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from closelint import parsing, treeutil
from closelint.golang import facts as gofacts
from closelint.golang.facts import FUNC_NODES, Scope
from closelint.treeutil import text, walk

KEY = "go.http"

REQUEST_TYPE = "*net/http.Request"
WRITER_TYPE = "net/http.ResponseWriter"
# Context types of frameworks whose handlers take one value instead of (w, r).
CONTEXT_TYPES = {
    "*github.com/gin-gonic/gin.Context": "gin",
    "github.com/labstack/echo/v4.Context": "echo",
    "github.com/labstack/echo.Context": "echo",
    "*github.com/labstack/echo/v5.Context": "echo",
    "*github.com/gofiber/fiber/v2.Ctx": "fiber",
    "github.com/gofiber/fiber/v3.Ctx": "fiber",
}
# A Caddy HTTP middleware: ServeHTTP(w, r, next caddyhttp.Handler) error.
CADDY_NEXT_TYPES = ("github.com/caddyserver/caddy/v2/modules/caddyhttp.Handler",)
READER_TYPES = ("io.Reader", "io.ReadCloser", "io.ReadSeeker", "io.ReadSeekCloser", "io.ReadWriter",
                "io.ReadWriteCloser")
BUFFER_TYPES = ("bytes.Buffer", "*bytes.Buffer")
FORM_TYPES = ("*mime/multipart.Form",)
MREADER_TYPES = ("*mime/multipart.Reader",)
_INT_TYPES = {"int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64",
              "uintptr", "byte", "rune"}
_TEST_PACKAGE = re.compile(r"(^|_)(test|tests|testing|testutil|testutils|testhelper|testhelpers|mock|mocks|"
                           r"fake|fakes|e2e|fixtures|testdata)$|test$|testing$|testutils?$")
_HTTPTEST = "net/http/httptest"
_TEST_SERVERS = ("NewServer", "NewTLSServer", "NewUnstartedServer")
_MIDDLEWARE_CALLS = ("ServeHTTP", "Next")  # next.ServeHTTP(w, r), gin's c.Next()
_STDLIB_CONTEXT_KEYS = ("ServerContextKey", "LocalAddrContextKey")
# A file's calls and its functions, in one pass of a query over the tree (two passes cost twice).
_CALLS_AND_FUNCS_QUERY = "(call_expression) @c [(function_declaration) (method_declaration) (func_literal)] @f"
_PARSE_CALLS = ("ParseMultipartForm", "FormFile", "MultipartForm", "ReadForm")
# What every middleware signal needs in its file's text (see _collect_signals): an assignment to a
# .Body or .Request field, or a call of RemoveAll, ServeHTTP or SetRequest. A file without any is
# neither parsed nor queried for them.
_MAY_SIGNAL = re.compile(rb"\.\s*(?:Body|Request)\s*(?:,|=(?!=))|RemoveAll|ServeHTTP|SetRequest")


_BINDING_STATEMENTS = ("[(short_var_declaration) (assignment_statement) (var_spec) (range_clause) "
                       "(type_switch_statement)] @s (func_literal) @f")


def _binding_statements(body) -> list:
    """The statements of a body that bind names (HttpFacts.bindings), in document order, less those of
    nested function literals (their own scopes): one query, not a walk of every node in Python."""
    found = parsing.captures("go", _BINDING_STATEMENTS, body)
    stmts = sorted(found.get("s", []), key=lambda n: (n.start_byte, -n.end_byte))
    literals = found.get("f")
    if not literals:
        return stmts
    outer: list = []  # the outermost literals' byte ranges, in order
    for lit in sorted(literals, key=lambda n: (n.start_byte, -n.end_byte)):
        if not outer or lit.start_byte >= outer[-1][1]:
            outer.append((lit.start_byte, lit.end_byte))
    starts = [start for start, _ in outer]
    out = []
    for n in stmts:
        i = bisect_right(starts, n.start_byte) - 1
        if i < 0 or n.start_byte >= outer[i][1]:
            out.append(n)
    return out


# ------------------------------------------------------------------------------------------ values

@dataclass(frozen=True)
class Val:
    """What an expression is, as far as the syntax tells.

    kind: request | ctx | body | limited | replaced | reader_param | form | form_param | mreader | buffer
    """

    kind: str
    fw: str = ""  # framework of a request or context: net/http, gin, echo, fiber, caddy
    derived: object = None  # the node where a request was copied (WithContext, Clone)
    param: int = -1  # index of the parameter it comes from, in `scope`
    scope: object = None  # the Scope whose parameter it is
    node: object = None  # where the value was made (a parse call, a limit call)
    wrapped: bool = False  # a body seen through a reader that wraps it (gzip, bufio)


def _merge(vals: list) -> "Val | None":
    """Several assignments reach a use: any limit wins (the answer that reports nothing), then a copy
    of a request wins over the request (the answer that explains a leak), else the latest value."""
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    for kind in ("limited", "replaced"):
        for v in vals:
            if v.kind == kind:
                return v
    derived = next((v for v in vals if v.derived is not None), None)
    return derived or vals[-1]


@dataclass
class Binding:
    name: str
    value: object  # expression node, or None for `var x T`
    index: int  # position of the name in a multi-value assignment from one call
    stmt: object
    type_text: str = ""  # declared type of `var x T`

    @property
    def start(self) -> int:
        return self.stmt.start_byte


@dataclass
class FieldAssign:
    """`X.F = V`: a body replaced or limited, a form dropped, c.Request replaced."""

    target: object  # the selector X.F
    operand: object  # X
    field: str
    value: object  # V (None when the right side has fewer values)
    stmt: object


@dataclass
class Tables:
    """Reader catalogs a rule supplies: calls that limit a reader, and calls that wrap one."""

    limiters: dict = field(default_factory=dict)  # (package, function) -> argument index of the reader
    wrappers: dict = field(default_factory=dict)  # (package, function) -> argument index (-1: any)
    limiter_types: tuple = ("io.LimitedReader",)
    limiter_type_pattern: str = ""  # a custom reader type whose name says it limits (maxBytesReader)

    @classmethod
    def from_catalog(cls, limiters=(), wrappers=(), limiter_types=(), limiter_type_pattern=""):
        t = cls()
        for row in limiters:
            t.limiters[(row["package"], row["function"])] = int(row.get("arg", 0))
        for row in wrappers:
            t.wrappers[(row["package"], row["function"])] = int(row.get("arg", 0))
        if limiter_types:
            t.limiter_types = tuple(limiter_types)
        t.limiter_type_pattern = limiter_type_pattern
        return t


NO_TABLES = Tables()


@dataclass
class ScopeInfo:
    framework: str | None  # net/http, gin, echo, fiber, caddy
    handler: bool  # shaped like a handler: (w, r), ServeHTTP, gin/echo/fiber context
    request_params: list  # names of *http.Request parameters
    ctx_params: dict  # name -> framework
    test: bool  # test code: _test.go, a test-support package, a httptest server's handler

    @property
    def request_function(self) -> bool:
        """Receives a request without being a handler."""
        return not self.handler and bool(self.request_params)


@dataclass
class Signal:
    """A package-wide fact with the place that shows it."""

    kind: str  # limit | cleanup | derive
    fw: str  # framework it applies to ('' for every one)
    file: object  # GoFile
    node: object
    why: str
    scope: object = None  # the function that shows it
    assign: object = None  # FieldAssign, for body-assign signals


# ------------------------------------------------------------------------------------------ facts

def facts(ctx) -> "HttpFacts":
    hf = ctx.shared.get(KEY)
    if hf is None:
        hf = ctx.shared[KEY] = HttpFacts(ctx)
    return hf


class HttpFacts:
    def __init__(self, ctx):
        self.ctx = ctx
        self.pkg = ctx.package
        self._info: dict = {}
        self._bindings: dict = {}
        self._fields: dict = {}
        self._memo: dict = {}
        self._callers = None
        self._consts = None
        self._calls: dict = {}
        self._call_scope: dict = {}
        self._signals = None
        self._test_literals = None

    # ---------------------------------------------------------------- scopes

    @property
    def scopes(self) -> list[Scope]:
        """Every scope of the package (parses every file): for the package-wide questions only
        (callers, middleware signals); the rest asks for scopes by node or by file."""
        return gofacts.scopes(self.ctx)

    def scope_of(self, node) -> Scope | None:
        """The innermost function (declaration or literal) around node."""
        owner = self._call_scope.get(node.id) if node.type == "call_expression" else None
        if owner is not None:
            return gofacts.scope_at(self.ctx, owner)
        for anc in _ancestors(node):
            if anc.type in FUNC_NODES:
                return gofacts.scope_at(self.ctx, anc)
        return None

    def file_scopes(self, gofile):
        return gofacts.file_scopes(self.ctx, gofile)

    def calls_in(self, gofile) -> list:
        """Every call expression of a file, in document order (one C-side query)."""
        got = self._calls.get(id(gofile))
        if got is None:
            found = parsing.captures("go", _CALLS_AND_FUNCS_QUERY, gofile.source.root)
            got = sorted(found.get("c", []), key=lambda n: n.start_byte)
            self._calls[id(gofile)] = got
            self._index_call_scopes(gofile, got, found.get("f", []))
        return got

    def _index_call_scopes(self, gofile, calls, funcs):
        """call id -> id of its innermost function, by one sweep over positions (walking up from
        every call would be quadratic in nesting depth: f(f(f(...))) 20,000 deep)."""
        funcs = sorted(funcs, key=lambda n: (n.start_byte, -n.end_byte))
        by_scope: dict = {}
        stack: list = []
        fi = 0
        for call in calls:
            while fi < len(funcs) and funcs[fi].start_byte <= call.start_byte:
                f = funcs[fi]
                while stack and stack[-1].end_byte <= f.start_byte:
                    stack.pop()
                stack.append(f)
                fi += 1
            while stack and stack[-1].end_byte <= call.start_byte:
                stack.pop()
            owner = None
            for f in reversed(stack):
                if f.end_byte >= call.end_byte and f.start_byte <= call.start_byte and f != call.child_by_field_name("function"):
                    owner = f
                    break
            if owner is not None:
                self._call_scope[call.id] = owner
                by_scope.setdefault(owner.id, []).append(call)
        self._memo[("own_calls", id(gofile))] = by_scope

    def info(self, scope: Scope) -> ScopeInfo:
        got = self._info.get(scope.node.id)
        if got is None:
            got = self._info[scope.node.id] = self._scope_info(scope)
        return got

    def _scope_info(self, scope: Scope) -> ScopeInfo:
        types = [p.type for p in scope.params]
        request_params = [p.name for p in scope.params if p.type == REQUEST_TYPE and p.name not in ("", "_")]
        ctx_params = {p.name: CONTEXT_TYPES[p.type] for p in scope.params
                      if p.type in CONTEXT_TYPES and p.name not in ("", "_")}
        fw = scope.framework
        if fw is None and ctx_params:
            fw = next(iter(ctx_params.values()))
        is_serve = scope.function is not None and scope.function.name == "ServeHTTP" and scope.function.receiver
        if any(t in CADDY_NEXT_TYPES for t in types) and is_serve:
            fw = "caddy"
        # (w http.ResponseWriter, r *http.Request[, ...]) in that order: handlers, httprouter's
        # Handle; a helper taking them in another order among other values is a request function.
        wr = types[:2] == [WRITER_TYPE, REQUEST_TYPE]
        handler = fw is not None and (wr or bool(ctx_params) or fw == "caddy" or (is_serve and REQUEST_TYPE in types))
        if fw == "net/http" and not handler:
            fw = None
        return ScopeInfo(fw, handler, request_params, ctx_params, self._is_test(scope))

    @staticmethod
    def file_is_test(gf) -> bool:
        """All of the file is test code: a _test.go file, a test package, a file that imports httptest."""
        if gf.path.name.endswith("_test.go") or gf.package.endswith("_test") or _TEST_PACKAGE.search(gf.package or ""):
            return True
        return _HTTPTEST in gf.imports.values() or _HTTPTEST in gf.dot_imports

    def _is_test(self, scope: Scope) -> bool:
        gf = scope.file
        if self.file_is_test(gf):
            return True
        if self._test_literals is None:
            self._test_literals = self._httptest_literals()
        s = scope
        while s is not None:
            if s.node.id in self._test_literals:
                return True
            s = s.parent
        return False

    def _httptest_literals(self) -> set:
        """Function literals served by httptest.NewServer(...) in non-test files (test helpers)."""
        out = set()
        for gf in self.pkg.files:
            if gf.path.name.endswith("_test.go") or _HTTPTEST not in gf.imports.values():
                continue  # a test file's literals are test code already
            for call in self.calls_in(gf):
                pkg, name = gofacts.call_name(gf, call)
                if pkg == _HTTPTEST and name in _TEST_SERVERS:
                    for n in walk(call):
                        if n.type == "func_literal":
                            out.add(n.id)
        return out

    # ---------------------------------------------------------------- bindings

    def bindings(self, scope: Scope) -> dict:
        """name -> [Binding] of the scope's own body (nested literals are their own scopes)."""
        got = self._bindings.get(scope.node.id)
        if got is not None:
            return got
        got: dict = {}
        fields: list = []
        gofile = scope.file
        body = scope.body
        for node in _binding_statements(body) if body is not None else ():
            t = node.type
            if t in ("short_var_declaration", "assignment_statement"):
                if t == "assignment_statement":
                    op = node.child_by_field_name("operator")
                    if op is not None and text(op) != "=":
                        continue
                left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
                if left is None or right is None:
                    continue
                lhs, rhs = left.named_children, right.named_children
                for i, target in enumerate(lhs):
                    if len(lhs) == len(rhs):
                        value, index = rhs[i], 0
                    elif len(rhs) == 1:
                        value, index = rhs[0], i
                    else:
                        value, index = None, i
                    if target.type == "identifier":
                        name = text(target)
                        if name != "_":
                            got.setdefault(name, []).append(Binding(name, value, index, node))
                    elif target.type == "selector_expression" and index == 0:
                        fields.append(FieldAssign(target, target.child_by_field_name("operand"),
                                                  text(target.child_by_field_name("field")), value, node))
            elif t == "var_spec":
                tnode = node.child_by_field_name("type")
                type_text = gofile.qualify(tnode) if tnode is not None else ""
                names = node.children_by_field_name("name")
                value_list = node.child_by_field_name("value")
                values = value_list.named_children if value_list is not None else []
                for i, n in enumerate(names):
                    if len(values) == len(names):
                        value, index = values[i], 0
                    elif len(values) == 1:
                        value, index = values[0], i
                    else:
                        value, index = None, i
                    got.setdefault(text(n), []).append(Binding(text(n), value, index, node, type_text))
            elif t in ("range_clause", "type_switch_statement"):
                # `for _, x := range ...` / `switch x := y.(type)`: x is something else now
                left = node.child_by_field_name("left") or node.child_by_field_name("alias")
                if left is not None:
                    for n in ([left] if left.type == "identifier" else left.named_children):
                        if n.type == "identifier":
                            got.setdefault(text(n), []).append(Binding(text(n), None, 0, node, "?"))
        self._bindings[scope.node.id] = got
        self._fields[scope.node.id] = fields
        return got

    def field_assigns(self, scope: Scope) -> list:
        self.bindings(scope)
        return self._fields[scope.node.id]

    def declares(self, scope: Scope, name: str) -> bool:
        """The name is a parameter, receiver or local of scope itself."""
        if name in self.bindings(scope):
            return True
        if any(p.name == name for p in [*scope.params, *scope.results]):
            return True
        return scope.function is not None and scope.function.receiver_name == name and scope.parent is None

    # ---------------------------------------------------------------- classification

    def classify(self, scope: Scope, expr, tables: Tables = NO_TABLES, at: int | None = None):
        """What expr is (a Val), or None when the syntax does not say."""
        return self._classify(scope, expr, tables, at, 0)

    def _classify(self, scope, expr, tables, at, depth):
        if expr is None or scope is None or depth > 12:
            return None
        key = (expr.id, id(tables), at)
        if key in self._memo:
            return self._memo[key]
        self._memo[key] = None  # cycle guard: `r = wrap(r)`
        v = self._classify_uncached(scope, expr, tables, at, depth)
        self._memo[key] = v
        return v

    def _classify_uncached(self, scope, expr, tables, at, depth):
        t = expr.type
        gofile = scope.file
        if at is None:
            at = expr.start_byte
        if t == "parenthesized_expression":
            inner = expr.named_children[0] if expr.named_children else None
            return self._classify(scope, inner, tables, at, depth + 1)
        if t == "identifier":
            return self._lookup(scope, text(expr), at, tables, depth)
        if t == "type_assertion_expression":
            return self._classify(scope, expr.child_by_field_name("operand"), tables, at, depth + 1)
        if t == "selector_expression":
            operand = expr.child_by_field_name("operand")
            fld = text(expr.child_by_field_name("field"))
            if fld == "Body":
                base = self._classify(scope, operand, tables, at, depth + 1)
                if base is not None and base.kind == "request":
                    replaced = self._body_assignment(scope, operand, at, tables, depth)
                    if replaced is not None:
                        return replaced
                    return Val("body", base.fw, base.derived, base.param, base.scope, expr)
                return None
            if fld == "Request":
                base = self._classify(scope, operand, tables, at, depth + 1)
                if base is not None and base.kind == "ctx" and base.fw == "gin":
                    return Val("request", "gin", self._gin_request_assigned(scope, operand, at), node=expr)
                return None
            if fld == "MultipartForm":
                base = self._classify(scope, operand, tables, at, depth + 1)
                if base is not None and base.kind == "request":
                    return Val("form", base.fw, base.derived, base.param, base.scope, expr)
                return None
            return None
        if t == "call_expression":
            return self._classify_call(scope, expr, tables, at, depth)
        if t == "unary_expression":
            operand = expr.child_by_field_name("operand")
            op = expr.child_by_field_name("operator")
            if op is not None and text(op) == "&" and operand is not None:
                if operand.type == "composite_literal":
                    return self._classify_composite(gofile, operand, tables)
                v = self._classify(scope, operand, tables, at, depth + 1)
                return v if v is not None and v.kind == "buffer" else None
            if op is not None and text(op) == "*" and operand is not None:  # *r (a copy of the request)
                v = self._classify(scope, operand, tables, at, depth + 1)
                return v if v is not None and v.kind == "buffer" else None
            return None
        if t == "composite_literal":
            return self._classify_composite(gofile, expr, tables)
        return None

    def _classify_composite(self, gofile, lit, tables):
        tnode = lit.child_by_field_name("type")
        if tnode is None:
            return None
        qualified = gofile.qualify(tnode)
        if qualified in tables.limiter_types:
            return Val("limited", node=lit)
        if qualified in ("bytes.Buffer",):
            return Val("buffer", node=lit)
        if tables.limiter_type_pattern and re.search(tables.limiter_type_pattern, text(tnode), re.I):
            return Val("limited", node=lit)
        return None

    def _classify_call(self, scope, call, tables, at, depth):
        gofile = scope.file
        fn = call.child_by_field_name("function")
        args = call.child_by_field_name("arguments")
        argv = [a for a in args.named_children if a.type != "comment"] if args is not None else []
        if fn is None:
            return None
        if fn.type == "identifier" and text(fn) == "new" and len(argv) == 1:  # new(bytes.Buffer)
            return Val("buffer", node=call) if gofile.qualify(argv[0]) == "bytes.Buffer" else None
        if fn.type == "selector_expression":
            operand = fn.child_by_field_name("operand")
            name = text(fn.child_by_field_name("field"))
            pkg = self.import_of(scope, operand)
            if pkg is not None:
                key = (pkg, name)
                if key in tables.limiters:
                    return Val("limited", node=call)
                if key in tables.wrappers:
                    i = tables.wrappers[key]
                    inner = argv if i < 0 else argv[i:i + 1]
                    vals = [self._classify(scope, a, tables, at, depth + 1) for a in inner]
                    v = _merge([x for x in vals if x is not None and x.kind in ("body", "limited", "reader_param")])
                    if v is not None and v.kind in ("body", "reader_param"):
                        return Val(v.kind, v.fw, v.derived, v.param, v.scope, v.node, True)
                    return v
                if key == ("mime/multipart", "NewReader"):
                    return Val("mreader", node=call)
                if key == ("bytes", "NewBuffer") or key == ("bytes", "NewBufferString"):
                    return Val("buffer", node=call)
                return None
            base = self._classify(scope, operand, tables, at, depth + 1)
            if base is None:
                return self._helper_result(scope, call, tables)
            if base.kind == "request":
                if name in ("WithContext", "Clone"):  # a copy, of the request that came in as base
                    return Val("request", base.fw, call, base.param, base.scope, call)
                if name == "MultipartReader":
                    return Val("mreader", base.fw, base.derived, base.param, base.scope, call)
                return None
            if base.kind == "ctx":
                if base.fw == "echo" and name == "Request" and not argv:
                    return Val("request", "echo", self._echo_request_set(scope, operand, at), node=call)
                if base.fw in ("gin", "echo") and name == "MultipartForm":
                    req = self.ctx_request(scope, operand, at)
                    return Val("form", base.fw, req.derived if req else None, base.param, base.scope, call)
                return None
            if base.kind == "mreader" and name == "ReadForm":
                return Val("form", base.fw, base.derived, -1, None, call)
            return None
        return self._helper_result(scope, call, tables)

    def _helper_result(self, scope, call, tables):
        callee = self.callee(scope, call)
        if callee is not None and self._limits_inside(callee, tables):
            return Val("limited", node=call)
        return None

    def _limits_inside(self, fn, tables) -> bool:
        """A package function that calls a limiter (`func limitBody(r io.Reader) io.Reader { return
        io.LimitReader(r, max) }`): what it returns is taken as limited."""
        key = ("limits", fn.node.id, id(tables))
        got = self._memo.get(key)
        if got is None:
            got = False
            if fn.results and fn.body is not None:
                for n in walk(fn.body):
                    if n.type == "call_expression":
                        pkg, name = gofacts.call_name(fn.file, n)
                        if (pkg, name) in tables.limiters:
                            got = True
                            break
                    elif n.type == "composite_literal" and getattr(
                            self._classify_composite(fn.file, n, tables), "kind", "") == "limited":
                        got = True
                        break
            self._memo[key] = got
        return got

    def ctx_request(self, scope, ctx_expr, at):
        """The request of a gin/echo context expression."""
        v = self._classify(scope, ctx_expr, NO_TABLES, at, 0)
        if v is None or v.kind != "ctx":
            return None
        if v.fw == "gin":
            return Val("request", "gin", self._gin_request_assigned(scope, ctx_expr, at), node=ctx_expr)
        if v.fw == "echo":
            return Val("request", "echo", self._echo_request_set(scope, ctx_expr, at), node=ctx_expr)
        return None

    def _gin_request_assigned(self, scope, ctx_expr, at):
        """`c.Request = c.Request.WithContext(ctx)` before `at` in this handler: the node, else None."""
        want = text(ctx_expr)
        s = scope
        while s is not None:
            for fa in self.field_assigns(s):
                if fa.field == "Request" and fa.stmt.start_byte < at and text(fa.operand) == want:
                    return fa.stmt
            s = s.parent
        return None

    def _echo_request_set(self, scope, ctx_expr, at):
        want = text(ctx_expr)
        s = scope
        while s is not None:
            for call in self._own_calls(s):
                fn = call.child_by_field_name("function")
                if (call.start_byte < at and fn is not None and fn.type == "selector_expression"
                        and text(fn.child_by_field_name("field")) == "SetRequest"
                        and text(fn.child_by_field_name("operand")) == want):
                    return call
            s = s.parent
        return None

    def _own_calls(self, scope):
        """The calls of scope's own body, from the file's one query (not those of nested literals)."""
        key = ("own_calls", id(scope.file))
        if key not in self._memo:
            self.calls_in(scope.file)
        return self._memo[key].get(scope.node.id, [])

    def own_calls(self, scope):
        """The calls of scope's own body (not those of nested function literals)."""
        return self._own_calls(scope)

    def import_of(self, scope, operand) -> str | None:
        """The import path an operand names (`http` in http.MaxBytesReader), unless a local shadows it."""
        if operand is None or operand.type != "identifier":
            return None
        name = text(operand)
        path = scope.file.import_path(name)
        if path is None:
            return None
        s = scope
        while s is not None:
            if self.declares(s, name):
                return None
            s = s.parent
        return path

    def _lookup(self, scope, name, at, tables, depth):
        """Values a name may hold at `at`: assignments written before it, in scope and in the scopes
        around it up to the one that declares the name (a parameter, `:=` or `var`)."""
        segments = []  # innermost scope first; each in source order
        s = scope
        while s is not None:
            binds = self.bindings(s).get(name, ())
            before = [b for b in binds if b.start < at]
            is_param = any(p.name == name for p in s.params)
            vals = [self._param_val(s, name)] if is_param else []
            vals += [self._binding_val(s, b, tables, depth) for b in before]
            segments.append(vals)
            declared = is_param or any(b.stmt.type != "assignment_statement" for b in before)
            if declared or (s.parent is None and s.function is not None and s.function.receiver_name == name):
                break
            s = s.parent
        return _merge([v for seg in reversed(segments) for v in seg])

    def _param_val(self, scope, name):
        for i, p in enumerate(scope.params):
            if p.name == name:
                return self._typed_val(scope, p.type.removeprefix("..."), i)
        if scope.parent is None and scope.function is not None and scope.function.receiver_name == name:
            return None
        return None

    def _typed_val(self, scope, type_text, index=-1):
        if type_text == REQUEST_TYPE:
            info = self.info(scope)
            return Val("request", info.framework or "net/http", None, index, scope)
        fw = CONTEXT_TYPES.get(type_text)
        if fw:
            return Val("ctx", fw, None, index, scope)
        if type_text in READER_TYPES:
            return Val("reader_param", "", None, index, scope)
        if type_text in FORM_TYPES:
            return Val("form_param", "", None, index, scope)
        if type_text in MREADER_TYPES:
            return Val("mreader", "", None, index, scope)
        if type_text in BUFFER_TYPES:
            return Val("buffer", "", None, index, scope)
        return None

    def _binding_val(self, scope, b: Binding, tables, depth):
        if b.value is None:
            if b.type_text and b.type_text != "?":
                v = self._typed_val(scope, b.type_text)
                return v if v is not None and v.kind == "buffer" else None
            return None
        v = self._classify(scope, b.value, tables, b.start, depth + 1)
        if v is None:
            return None
        if b.index != 0:
            return None  # `_, err := f()`: the second value is not what f makes
        return v

    def _body_assignment(self, scope, req_expr, at, tables, depth):
        """The latest `X.Body = V` before `at` for the same request expression: V's value."""
        want = req_expr if isinstance(req_expr, str) else text(req_expr)
        best = None
        s = scope
        while s is not None:
            for fa in self.field_assigns(s):
                if fa.field == "Body" and fa.stmt.start_byte < at and text(fa.operand) == want:
                    if best is None or fa.stmt.start_byte > best[0].stmt.start_byte:
                        best = (fa, s)
            if best is not None:
                break
            s = s.parent
        if best is None:
            return None
        fa, s = best
        v = self._classify(s, fa.value, tables, fa.stmt.start_byte, depth + 1)
        if v is not None and v.kind in ("limited", "body"):
            return v
        # r.Body = &IdleTimeoutReader{ReadCloser: r.Body}: a wrapper over the same body
        if fa.value is not None:
            inner = next((n for n in walk(fa.value) if n.type == "selector_expression"
                          and text(n) == f"{want}.Body"), None)
            if inner is not None:
                v = self._classify(s, inner, tables, fa.stmt.start_byte, depth + 1)
                if v is not None and v.kind in ("limited", "body"):
                    return Val(v.kind, v.fw, v.derived, v.param, v.scope, v.node, True) if v.kind == "body" else v
        return Val("replaced", node=fa.stmt)

    def limit_before(self, scope, req_expr, at, tables) -> object:
        """The statement that limits (or replaces) this request's body before `at`, or None."""
        v = self._body_assignment(scope, req_expr, at, tables, 0)
        if v is not None and v.kind in ("limited", "replaced"):
            return v.node
        return None

    # ---------------------------------------------------------------- call graph

    def callers(self, function_node) -> list:
        """[(caller scope, call node)] of a package function or method, from the package's files:
        the calls by its name in the files whose text holds that name."""
        if self._callers is None:
            self._callers = {}
        got = self._callers.get(function_node.id)
        if got is not None:
            return got
        got = self._callers[function_node.id] = []
        name = text(function_node.child_by_field_name("name"))
        needle = name.encode()
        for gf in self.pkg.files:
            if needle not in gf.source.data:
                continue
            for call in self.calls_in(gf):
                if _called_name(call) != name:
                    continue
                scope = self.scope_of(call)
                target = self.callee(scope, call) if scope is not None else None
                if target is not None and target.node.id == function_node.id:
                    got.append((scope, call))
        got.sort(key=lambda sc: (str(sc[0].file.path), sc[0].node.start_byte, -sc[0].node.end_byte,
                                 sc[1].start_byte))  # scope by scope, as the package reads
        return got

    def callee(self, scope, call):
        """The package Function a call runs: `f(x)`, `s.m(x)` on a receiver of a package type."""
        fn = call.child_by_field_name("function")
        if fn is None:
            return None
        if fn.type == "identifier":
            name = text(fn)
            s = scope
            while s is not None:
                if self.declares(s, name):
                    return None
                s = s.parent
            return self.pkg.functions.get(name)
        if fn.type == "selector_expression":
            operand = fn.child_by_field_name("operand")
            name = text(fn.child_by_field_name("field"))
            if operand is None or self.import_of(scope, operand) is not None:
                return None
            if operand.type == "identifier" and scope.receiver_name == text(operand) \
                    and not any(self.declares(s, text(operand)) for s in _chain_literals(scope)):
                return self.pkg.method(scope.receiver, name)
            t = gofacts.receiver_type(self.ctx, scope, operand)
            if t and "." not in t.lstrip("*"):
                return self.pkg.method(t.lstrip("*"), name)
        return None

    def scope_of_function(self, fn) -> Scope | None:
        return gofacts.scope_at(self.ctx, fn.node) if fn is not None else None

    # ---------------------------------------------------------------- package-wide signals

    @property
    def signals(self) -> list[Signal]:
        if self._signals is None:
            self._signals = self._collect_signals()
        return self._signals

    def _collect_signals(self) -> list[Signal]:
        out: list[Signal] = []
        scopes = (scope for gf in sorted(self.pkg.files, key=lambda g: str(g.path))
                  if _MAY_SIGNAL.search(gf.source.data) is not None for scope in self.file_scopes(gf))
        for scope in scopes:  # in the order of self.scopes, less the files that cannot hold a signal
            info = self.info(scope)
            if info.test or not self.is_middleware(scope):
                continue
            gf = scope.file
            for fa in self.field_assigns(scope):
                base = self.classify(scope, fa.operand)
                if base is None:
                    continue
                # sets the body of the request it passes on (a limit, when the rule's tables say so)
                if fa.field == "Body" and base.kind == "request":
                    out.append(Signal("body-assign", base.fw, gf, fa.stmt, f"the middleware {scope.name} sets "
                                      f"{text(fa.target)}", scope=scope, assign=fa))
                # gin: c.Request = c.Request.WithContext(ctx)
                if fa.field == "Request" and base.kind == "ctx" and base.fw == "gin":
                    out.append(Signal("derive", "gin", gf, fa.stmt, f"the gin middleware {scope.name} replaces "
                                      f"c.Request with a copy ({_line(fa.stmt)})", scope=scope))
            # removes the form of every request it serves (and parses none itself)
            nested = [n for n in walk(scope.body) if n.type == "call_expression"] if scope.body is not None else []
            parses = any(_called_name(c) in _PARSE_CALLS for c in nested)
            for c in nested if not parses else ():
                if _called_name(c) != "RemoveAll":
                    continue
                fn = c.child_by_field_name("function")
                if fn is None or fn.type != "selector_expression":
                    continue
                inner = self.scope_of(c) or scope
                v = self.classify(inner, fn.child_by_field_name("operand"))
                if v is not None and v.kind == "form" and (
                        v.fw in ("gin", "echo") or (v.node is not None and v.node.type == "selector_expression")):
                    out.append(Signal("cleanup", v.fw, gf, c, f"the middleware {scope.name} removes the "
                                      f"request's form ({_line(c)})", scope=scope))
            for c in self._own_calls(scope):
                fn = c.child_by_field_name("function")
                name = _called_name(c)
                if fn is None or fn.type != "selector_expression":
                    continue
                operand = fn.child_by_field_name("operand")
                # passes the next handler a copy of the request
                if name == "ServeHTTP":
                    args = c.child_by_field_name("arguments")
                    argv = args.named_children if args is not None else []
                    if len(argv) >= 2:
                        v = self.classify(scope, argv[1])
                        if v is not None and v.kind == "request" and v.derived is not None:
                            out.append(Signal("derive", "net/http", gf, v.derived,
                                              f"the middleware {scope.name} passes the next handler a copy of "
                                              f"the request ({short(v.derived)}, {_line(v.derived)})", scope=scope))
                # echo: c.SetRequest(c.Request().WithContext(ctx))
                elif name == "SetRequest":
                    v = self.classify(scope, operand)
                    if v is not None and v.kind == "ctx" and v.fw == "echo":
                        out.append(Signal("derive", "echo", gf, c, f"the echo middleware {scope.name} replaces "
                                          f"the request (c.SetRequest, {_line(c)})", scope=scope))
        return out

    def is_middleware(self, scope) -> bool:
        """Passes the request on: next.ServeHTTP(w, r), c.Next(), next(c), or a gin.HandlerFunc a
        function returns (gin runs the rest of the chain after it even without c.Next())."""
        calls = self._own_calls(scope)
        if any(_called_name(c) in _MIDDLEWARE_CALLS for c in calls) or any(
                self._calls_func_param(scope, c) for c in calls):
            return True
        if scope.is_literal and self.info(scope).framework == "gin":
            parent = scope.node.parent
            while parent is not None and parent.type in ("expression_list", "parenthesized_expression"):
                parent = parent.parent
            if parent is not None and parent.type == "return_statement":
                owner = scope.parent
                return owner is not None and any("gin.HandlerFunc" in r.type for r in owner.results)
        return False

    def _calls_func_param(self, scope, call) -> bool:
        """`next(w, r)` / `next(c)` / `h(w, r)`: calls a function-typed parameter of scope's chain."""
        fn = call.child_by_field_name("function")
        if fn is None or fn.type != "identifier":
            return False
        name = text(fn)
        s = scope
        while s is not None:
            for p in s.params:
                if p.name == name:
                    t = p.type
                    return t.startswith("func") or t.endswith("HandlerFunc") or t.endswith("Handler")
            s = s.parent
        return False

    def package_calls(self, catalog: dict) -> list:
        """[(gofile, call, row)] for every call in the package of a (package, function) in catalog."""
        out = []
        if not catalog:
            return out
        packages = {k[0] for k in catalog}
        names = {k[1].encode() for k in catalog}
        for gf in self.pkg.files:
            if not any(p in packages for p in gf.imports.values()) or not any(n in gf.source.data for n in names):
                continue  # a call of a catalog function writes its name
            for call in self.calls_in(gf):
                pkg, name = gofacts.call_name(gf, call)
                row = catalog.get((pkg, name))
                if row is not None:
                    scope = self.scope_of(call)
                    if scope is not None and self.info(scope).test:
                        continue
                    if scope is None and gf.path.name.endswith("_test.go"):
                        continue
                    out.append((gf, call, row))
        return out

    def imports_any(self, paths) -> tuple | None:
        """(gofile, import path) of the first non-test file of the package importing one of paths."""
        for gf in self.pkg.files:
            if gf.path.name.endswith("_test.go"):
                continue
            for p in gf.imports.values():
                if p in paths:
                    return gf, p
        return None

    # ---------------------------------------------------------------- constants

    def fold(self, expr, scope: Scope | None = None, depth: int = 0) -> int | None:
        """The integer value of a constant expression, or None."""
        if expr is None or depth > 20:
            return None
        t = expr.type
        if t == "int_literal":
            return _int_literal(text(expr))
        if t == "parenthesized_expression":
            return self.fold(expr.named_children[0] if expr.named_children else None, scope, depth + 1)
        if t == "unary_expression":
            op = text(expr.child_by_field_name("operator"))
            v = self.fold(expr.child_by_field_name("operand"), scope, depth + 1)
            if v is None:
                return None
            return -v if op == "-" else v if op == "+" else (~v if op == "^" else None)
        if t == "binary_expression":
            a = self.fold(expr.child_by_field_name("left"), scope, depth + 1)
            b = self.fold(expr.child_by_field_name("right"), scope, depth + 1)
            if a is None or b is None:
                return None
            op = text(expr.child_by_field_name("operator"))
            try:
                return {
                    "+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b,
                    "/": lambda: int(a / b) if b else None, "%": lambda: a % b if b else None,
                    "<<": lambda: a << b if 0 <= b < 128 else None, ">>": lambda: a >> b if b >= 0 else None,
                    "&": lambda: a & b, "|": lambda: a | b, "^": lambda: a ^ b, "&^": lambda: a & ~b,
                }.get(op, lambda: None)()
            except (ValueError, OverflowError):
                return None
        if t == "call_expression":  # int64(32 << 20)
            fn = expr.child_by_field_name("function")
            args = expr.child_by_field_name("arguments")
            if fn is not None and fn.type == "identifier" and text(fn) in _INT_TYPES and args is not None \
                    and len(args.named_children) == 1:
                return self.fold(args.named_children[0], scope, depth + 1)
            return None
        if t == "identifier":
            return self._fold_const(text(expr), expr, scope, depth)
        return None

    def _fold_const(self, name, at_node, scope, depth):
        if self._consts is None:
            self._consts = {}
            for gf in self.pkg.files:
                for spec in parsing.captures("go", "(const_spec) @c", gf.source.root).get("c", []):
                    for i, n in enumerate(spec.children_by_field_name("name")):
                        value = spec.child_by_field_name("value")
                        vals = value.named_children if value is not None else []
                        v = vals[i] if i < len(vals) else None
                        func = next((a for a in _ancestors(spec) if a.type in FUNC_NODES), None)
                        self._consts.setdefault(text(n), []).append((func, v))
        entries = self._consts.get(name)
        if not entries:
            return None
        # a local shadowing the name (not a const) makes it unknowable
        if scope is not None:
            s = scope
            while s is not None:
                if name in self.bindings(s) or any(p.name == name for p in s.params):
                    return None
                s = s.parent
        funcs = {a.id for a in _ancestors(at_node) if a.type in FUNC_NODES}
        local = [v for f, v in entries if f is not None and f.id in funcs]
        top = [v for f, v in entries if f is None]
        cands = local or top
        if len(cands) != 1 or cands[0] is None:
            return None
        if any(n.type == "iota" or (n.type == "identifier" and text(n) == "iota") for n in walk(cands[0])):
            return None
        return self.fold(cands[0], None, depth + 1)


# ------------------------------------------------------------------------------------------ helpers

def short(node, limit: int = 60) -> str:
    """A node's text on one line, shortened: `r.WithContext(context.WithValue(r.Context(), k, v))`."""
    t = " ".join(text(node).split())
    return t if len(t) <= limit else t[: limit - 3] + "..."


def _line(node) -> str:
    return f"line {node.start_point[0] + 1}"


def _called_name(call) -> str:
    fn = call.child_by_field_name("function")
    if fn is None:
        return ""
    if fn.type == "selector_expression":
        return text(fn.child_by_field_name("field"))
    if fn.type == "identifier":
        return text(fn)
    return ""


def called_name(call) -> str:
    return _called_name(call)


def _chain_literals(scope):
    s = scope
    while s is not None and s.is_literal:
        yield s
        s = s.parent


def ancestors(node):
    return _ancestors(node)


def _ancestors(node):
    """Capped climb (py-tree-sitter's Node.parent walks down from the root on every step)."""
    return treeutil.ancestors(node)


def _int_literal(t: str) -> int | None:
    t = t.replace("_", "")
    try:
        if len(t) > 1 and t[0] == "0" and t[1].isdigit():
            return int(t, 8)
        return int(t, 0)
    except ValueError:
        return None


def path_matches(path, globs) -> bool:
    """A file path against gitignore-style globs (`internal/api/**`, `*/handlers/*.go`), matched
    against every tail of the path so that a pattern works whatever folder the scan started in."""
    if not globs:
        return False
    parts = path.as_posix().split("/")
    tails = ["/".join(parts[i:]) for i in range(len(parts))]
    for g in globs:
        g = g.strip().lstrip("/")
        if not g:
            continue
        if g.endswith("/"):
            g += "**"
        for tail in tails:
            if fnmatchcase(tail, g) or fnmatchcase(tail, g.replace("**/", "")) or \
                    (g.endswith("/**") and (tail + "/").startswith(g[:-2])):
                return True
    return False
