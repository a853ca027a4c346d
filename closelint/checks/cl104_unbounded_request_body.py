"""CL104 unbounded-request-body: a handler reads or decodes the whole request body with no limit.

The request lifecycle (handlers, requests, bodies and the readers over them, limits, middleware) comes
from closelint/golang/http.py; this module decides which reads are sinks, which limits apply, and at
which level to report:

- a sink in a handler, or in a function that gets the request from a handler of the package: warning;
- a sink in a function that receives a *http.Request from outside the package: one level lower;
- nothing when the body is limited before the read, when every in-package caller limits it, when the
  package limits every request (middleware, MaxBytesHandler, echo BodyLimit...), for fiber, for client
  code and for test code.
"""

from __future__ import annotations

import re

from closelint.golang import facts as gofacts
from closelint.golang import http
from closelint.treeutil import text, walk

# A sink needs a function that receives the request (or a gin/echo context) in the same file.
TOKENS = (b"http.Request", b"gin.Context", b"echo.Context")

_CLIENT_CALLS = ("Do", "RoundTrip", "Send", "Post", "PostForm")


class _Rule:
    """The rule's catalogs and options, read once per unit."""

    def __init__(self, ctx):
        cat, opts = ctx.catalogs, ctx.options
        self.sinks = {(r["package"], r["function"]): r for r in cat.get("sinks", [])}
        self.context_sinks = {}
        self.binding_methods = {}
        for row in cat.get("context-sinks", []):
            for m in row.get("methods", []):
                self.context_sinks[(row["framework"], m)] = row
            for m in row.get("binding-methods", []):
                self.binding_methods[(row["framework"], m)] = row
        self.body_bindings = tuple(opts.get("body-bindings", ()))
        self.dispatching = set()
        for row in cat.get("context-sinks", []):
            self.dispatching |= set(row.get("content-type-methods", []))
        self.body_tags = tuple(opts.get("body-tags", ()))
        self.form_tags = tuple(opts.get("form-tags", ()))
        self.middleware = {(r["package"], r["function"]): r for r in cat.get("limiting-middleware", [])}
        self.tables = http.Tables.from_catalog(cat.get("limiters", []), cat.get("wrappers", []),
                                               limiter_type_pattern=opts.get("limiter-type-pattern", ""))
        self.client_pattern = re.compile(opts.get("client-function-pattern") or r"(?!x)x")
        self.messages = cat.get("messages", {})
        self.fixes = cat.get("fixes", {})
        self.limited_paths = list(opts.get("limited-paths", []))
        self.limit_condition = re.compile(opts.get("limit-condition-pattern") or r"(?!x)x")


def check(ctx):
    if ctx.options.get("limited-by-middleware"):
        return
    targets = [gf for gf in ctx.package.files if gf.source.is_target]
    if not targets:
        return
    rule = _Rule(ctx)
    hf = http.facts(ctx)
    an = _Analysis(ctx, hf, rule)
    for gofile in targets:
        if http.path_matches(gofile.path, rule.limited_paths):
            continue
        if not any(t in gofile.source.data for t in TOKENS) or hf.file_is_test(gofile):
            continue  # no function of this file receives a request outside tests: no call is a sink
        seen_lines = set()
        for call in hf.calls_in(gofile):
            scope = hf.scope_of(call)
            if scope is None or not an.sees_request(scope):
                continue
            hit = an.sink(scope, call)
            if hit is None:
                continue
            finding = an.report(scope, call, hit)
            if finding is None:
                continue
            key = (call.start_point[0], finding.message)
            if key in seen_lines:
                continue
            seen_lines.add(key)
            yield finding


class _Hit:
    def __init__(self, val, what, req_text, helper=None, helper_sink=None):
        self.val = val  # Val of the body (or request/context) that is read
        self.what = what
        self.req_text = req_text  # the request expression, for the fix
        self.helper = helper  # a package Function the body is passed to
        self.helper_sink = helper_sink  # (gofile, node) of the read inside the helper


class _Analysis:
    def __init__(self, ctx, hf, rule):
        self.ctx = ctx
        self.hf = hf
        self.rule = rule
        self._summaries = {}
        self._package_limit = None
        self._targeted = {}
        self._sees = {}
        self._ctx_names = {m for _, m in rule.context_sinks} | {m for _, m in rule.binding_methods}
        self._server_package = None

    def sees_request(self, scope) -> bool:
        """scope (or a function around it) receives a request or a gin/echo context, outside tests."""
        key = scope.node.id
        got = self._sees.get(key)
        if got is None:
            info = self.hf.info(scope)
            if info.test:
                got = False
            elif info.request_params or info.ctx_params:
                got = True
            else:
                got = scope.parent is not None and self.sees_request(scope.parent)
            self._sees[key] = got
        return got

    # ------------------------------------------------------------------ sinks

    def sink(self, scope, call, depth=0):
        """A _Hit when call reads a server request's body whole (limits not yet considered)."""
        hf, rule, tables = self.hf, self.rule, self.rule.tables
        fn = call.child_by_field_name("function")
        args = call.child_by_field_name("arguments")
        argv = [a for a in args.named_children if a.type != "comment"] if args is not None else []
        if fn is None:
            return None
        if fn.type == "selector_expression":
            operand = fn.child_by_field_name("operand")
            name = text(fn.child_by_field_name("field"))
            pkg = hf.import_of(scope, operand)
            if pkg is not None:
                row = rule.sinks.get((pkg, name))
                if row is None:
                    return None
                i = int(row.get("arg", 0))
                if i >= len(argv):
                    return None
                if "when-true" in row:
                    j = int(row["when-true"])
                    if j >= len(argv) or text(argv[j]) != "true":
                        return None
                if "into-buffer" in row:
                    j = int(row["into-buffer"])
                    dst = hf.classify(scope, argv[j], tables) if j < len(argv) else None
                    if dst is None or dst.kind != "buffer":
                        return None
                v = hf.classify(scope, argv[i], tables)
                if v is None:
                    return None
                if row.get("request"):
                    if v.kind != "request" or hf.limit_before(scope, argv[i], call.start_byte, tables):
                        return None
                    return _Hit(v, row["what"], text(argv[i]))
                if v.kind in ("body", "reader_param"):
                    return _Hit(v, row["what"], _request_text(v))
                return None
            # bytes.Buffer.ReadFrom(r.Body)
            if name == "ReadFrom" and len(argv) == 1:
                recv = hf.classify(scope, operand, tables)
                if recv is not None and recv.kind == "buffer":
                    v = hf.classify(scope, argv[0], tables)
                    if v is not None and v.kind in ("body", "reader_param"):
                        return _Hit(v, "reads the whole request body into a bytes.Buffer", _request_text(v))
                return None
            # gin / echo context methods
            base = hf.classify(scope, operand, tables) if name in self._ctx_names else None
            if base is not None and base.kind == "ctx":
                row = rule.context_sinks.get((base.fw, name))
                if row is None:
                    brow = rule.binding_methods.get((base.fw, name))
                    if brow is None or len(argv) < 2:
                        return None
                    binding = text(argv[1]).rsplit(".", 1)[-1]
                    if binding not in rule.body_bindings:
                        return None
                    row = brow
                if name in rule.dispatching and len(argv) >= 1 and self.binds_form(scope, argv[0]):
                    return None
                req_text = f"{text(operand)}.Request" + ("()" if base.fw == "echo" else "")
                if hf.limit_before(scope, req_text, call.start_byte, tables):
                    return None
                return _Hit(base, row["what"], req_text)
        # a helper of the package that reads what it is given
        if depth > 2 or not argv:
            return None
        vals = [hf.classify(scope, a, tables) for a in argv]
        if not any(v is not None and v.kind in ("body", "reader_param") for v in vals):
            return None
        callee = hf.callee(scope, call)
        if callee is None:
            return None
        summary = self.summary(callee)
        for i, sink_node in summary.items():
            if i >= len(argv):
                continue
            v = vals[i]
            if v is not None and v.kind in ("body", "reader_param"):
                what = self.sink(hf.scope_of_function(callee) or scope, sink_node, depth + 1)
                return _Hit(v, what.what if what else "reads it whole", _request_text(v), callee,
                            (callee.file, sink_node))
        return None

    def binds_form(self, scope, arg) -> bool:
        """c.ShouldBind(&x) / c.Bind(&x) where x's struct has only form, query, path or header tags:
        it binds a form or the URL, not a body decoded whole."""
        if arg.type == "unary_expression" and arg.child_by_field_name("operand") is not None:
            arg = arg.child_by_field_name("operand")
        struct = None
        if arg.type == "identifier":
            name = text(arg)
            s = scope
            while s is not None and struct is None:
                for b in self.hf.bindings(s).get(name, ()):
                    if b.type_text and b.type_text != "?":
                        struct = b.type_text
                    elif b.value is not None:
                        struct = _composite_type(scope.file, b.value)
                if struct is None:
                    struct = next((p.type for p in s.params if p.name == name), None)
                s = s.parent
        elif arg.type == "composite_literal":
            struct = _composite_type(scope.file, arg)
        if not struct:
            return False
        struct = struct.lstrip("*")
        if not struct.startswith("struct"):
            struct = self.ctx.package.type_defs.get(struct, "") if "." not in struct else ""
        if not struct.startswith("struct"):
            return False
        tags = re.findall(r'(\w+):"', " ".join(re.findall(r"`([^`]*)`", struct)))
        if not tags or any(t in self.rule.body_tags for t in tags):
            return False
        return any(t in self.rule.form_tags for t in tags)

    def summary(self, fn) -> dict:
        """{parameter index: the sink inside fn} for reader parameters fn reads whole."""
        key = fn.node.id
        if key in self._summaries:
            return self._summaries[key]
        self._summaries[key] = {}  # recursion guard
        scope = self.hf.scope_of_function(fn)
        out = {}
        if scope is not None and scope.body is not None:
            for n in walk(scope.body, prune=lambda x: x.type == "func_literal"):
                if n.type != "call_expression":
                    continue
                hit = self.sink(scope, n, depth=1)
                if hit is not None and hit.val.kind == "reader_param" and hit.val.scope is scope \
                        and hit.val.param not in out:
                    out[hit.val.param] = n
        self._summaries[key] = out
        return out

    # ------------------------------------------------------------------ limits and levels

    def package_limit(self, fw):
        """A limit the package puts on every request: (gofile, node, why) or None."""
        if self._package_limit is None:
            found = []
            self._targeted = {}
            for gf, call, _row in self.hf.package_calls(self.rule.middleware):
                targets = self._wrapped_handlers(gf, call)
                if targets:
                    for t in targets:
                        self._targeted[t] = (gf, call)
                    continue
                found.append(("", gf, call, f"{text(call.child_by_field_name('function'))} ({gf.path.name}:"
                                            f"{call.start_point[0] + 1})"))
            for gf, node in _max_bytes_error_refs(self.hf):
                found.append(("", gf, node, f"{text(node)} is handled ({gf.path.name}:{node.start_point[0] + 1}), "
                                            "so a MaxBytesReader limits the body somewhere"))
            for sig in self.hf.signals:
                if sig.kind == "body-assign" and sig.assign is not None:
                    v = self.hf.classify(sig.scope, sig.assign.value, self.rule.tables, sig.assign.stmt.start_byte)
                    if v is not None and v.kind == "limited":
                        found.append((sig.fw, sig.file, sig.node, sig.why))
            self._package_limit = found
        for f, gf, node, why in self._package_limit:
            if not f or f == fw or (fw in ("net/http", "caddy") and f in ("net/http", "caddy")):
                return gf, node, why
        return None

    def _wrapped_handlers(self, gf, call) -> set:
        """http.MaxBytesHandler(h, n) around named handlers: {function names, literal node ids}; empty
        when it wraps something else (a mux, a router: then it limits the whole package)."""
        pkg, name = gofacts.call_name(gf, call)
        if (pkg, name) != ("net/http", "MaxBytesHandler"):
            return set()
        args = call.child_by_field_name("arguments")
        if args is None or not args.named_children:
            return set()
        h = args.named_children[0]
        scope = self.hf.scope_of(call)
        # http.HandlerFunc(x) / http.HandlerFunc(func(w, r) {...})
        if h.type == "call_expression" and scope is not None:
            p2, n2 = gofacts.call_name(gf, h)
            inner = h.child_by_field_name("arguments")
            if (p2, n2) == ("net/http", "HandlerFunc") and inner is not None and inner.named_children:
                h = inner.named_children[0]
        if h.type == "func_literal":
            return {h.id}
        if h.type == "identifier" and text(h) in self.ctx.package.functions:
            return {text(h)}
        if h.type == "selector_expression" and self.ctx.package.methods_by_name.get(
                text(h.child_by_field_name("field"))):
            return {text(h.child_by_field_name("field"))}
        return set()

    def limited_by_helper(self, scope, req_text, at) -> bool:
        """A package helper called before `at` with the request limits its body:
        `limitBody(w, r)` that does `r.Body = http.MaxBytesReader(w, r.Body, n)`."""
        s = scope
        while s is not None:
            for call in self.hf.own_calls(s):
                if call.start_byte >= at:
                    continue
                args = call.child_by_field_name("arguments")
                argv = args.named_children if args is not None else []
                idx = [i for i, a in enumerate(argv) if text(a) == req_text or req_text.startswith(text(a) + ".")]
                if not idx:
                    continue
                callee = self.hf.callee(s, call)
                if callee is not None and self._limits_body(callee):
                    return True
            s = s.parent
        return False

    def _limits_body(self, fn) -> bool:
        key = ("limits_body", fn.node.id)
        got = self._summaries.get(key)
        if got is None:
            got = False
            scope = self.hf.scope_of_function(fn)
            if scope is not None:
                for fa in self.hf.field_assigns(scope):
                    if fa.field == "Body":
                        v = self.hf.classify(scope, fa.value, self.rule.tables, fa.stmt.start_byte)
                        if v is not None and v.kind == "limited":
                            got = True
                            break
            self._summaries[key] = got
        return got

    def targeted_limit(self, origin) -> bool:
        """The handler is wrapped in http.MaxBytesHandler where it is registered."""
        self.package_limit("")
        if not self._targeted:
            return False
        decl = origin.declaration
        names = {origin.node.id}
        if decl.function is not None:
            names.add(decl.function.name)
        s = origin
        while s is not None:
            names.add(s.node.id)
            s = s.parent
        return any(n in self._targeted for n in names)

    def server_package(self) -> bool:
        """The package serves HTTP: it has a handler, or uses a server framework or router."""
        if self._server_package is None:
            self._server_package = any(self.hf.info(s).handler and not self.hf.info(s).test
                                       for s in self.hf.scopes)
        return self._server_package

    def is_client(self, scope) -> bool:
        """A function that sends or signs its request: client code."""
        decl = scope.declaration
        names = {decl.function.name if decl.function else "", scope.name}
        if any(self.rule.client_pattern.search(n or "") for n in names):
            return True
        params = set(self.hf.info(scope).request_params)
        for call in self.hf.own_calls(scope):
            if http.called_name(call) in _CLIENT_CALLS:
                args = call.child_by_field_name("arguments")
                if args is not None and any(text(a) in params for a in args.named_children):
                    return True
        return False

    def origin(self, scope, val):
        """The function that received the request the value comes from."""
        if val.scope is not None:
            return val.scope
        s = scope
        while s is not None:
            info = self.hf.info(s)
            if info.handler or info.request_params:
                return s
            s = s.parent
        return scope

    def caller_state(self, fn, index, depth=0):
        """How the in-package callers of fn pass its request parameter `index`:
        ('limited' | 'handler' | 'other' | 'none', related call or None)."""
        calls = self.hf.callers(fn.node)
        if not calls:
            return "none", None
        handler_call = None
        unlimited = False
        for cscope, ccall in calls:
            args = ccall.child_by_field_name("arguments")
            argv = [a for a in args.named_children if a.type != "comment"] if args is not None else []
            if index >= len(argv):
                unlimited = True
                continue
            arg = argv[index]
            v = self.hf.classify(cscope, arg, self.rule.tables)
            if v is not None and v.kind in ("limited", "replaced"):
                continue
            if v is None or v.kind != "request":
                unlimited = True
                continue
            if self.hf.limit_before(cscope, arg, ccall.start_byte, self.rule.tables) \
                    or self.limited_by_helper(cscope, text(arg), ccall.start_byte):
                continue
            corigin = self.origin(cscope, v)
            cinfo = self.hf.info(corigin)
            if cinfo.test:
                continue
            if cinfo.framework == "fiber" or self.package_limit(cinfo.framework or "net/http") \
                    or self.targeted_limit(corigin):
                continue
            unlimited = True
            if cinfo.handler:
                handler_call = handler_call or (cscope, ccall)
            elif depth < 2 and v.scope is not None and v.param >= 0 and corigin.function is not None:
                state, rel = self.caller_state(corigin.function, v.param, depth + 1)
                if state == "handler":
                    handler_call = handler_call or rel
        if handler_call is not None:
            return "handler", handler_call
        return ("other" if unlimited else "limited"), None

    def configured_unlimited(self, scope, call) -> bool:
        """The read sits in a branch taken when a configured limit is off (`if fa.maxBodySize < 0 {
        return io.ReadAll(req.Body) }`): the project chose to allow unlimited bodies there."""
        for anc in http.ancestors(call):
            if anc == scope.node:
                break
            if anc.type == "if_statement":
                cond = anc.child_by_field_name("condition")
                if cond is None or "ContentLength" in text(cond):
                    continue
                if any(n.type in ("identifier", "field_identifier") and self.rule.limit_condition.search(text(n))
                       for n in walk(cond)):
                    return True
        return False

    def report(self, scope, call, hit):
        hf, rule = self.hf, self.rule
        val = hit.val
        if self.configured_unlimited(scope, call):
            return None
        origin = self.origin(scope, val)
        info = hf.info(origin)
        if info.test:
            return None
        fw = info.framework or val.fw or "net/http"
        if fw == "fiber":
            return None  # fiber limits request bodies to 4 MiB by default
        if self.package_limit(fw) is not None or self.targeted_limit(origin):
            return None
        if hit.req_text and self.limited_by_helper(scope, hit.req_text, call.start_byte):
            return None
        level = "warning"
        related = []
        extra = ""
        if val.kind == "reader_param":
            return None  # a helper's parameter: reported where a body is passed to it
        if not info.handler:
            if val.param < 0 or origin.function is None or origin.is_literal:
                state, rel = ("none", None)
            else:
                state, rel = self.caller_state(origin.function, val.param)
            if state == "limited":
                return None
            if state == "handler":
                cscope, ccall = rel
                related.append((cscope.file.source, ccall, f"the request comes from the handler {cscope.name}"))
                extra = rule.messages.get("from-handler", "").format(
                    caller=cscope.name, where=f"{cscope.file.path.name}:{ccall.start_point[0] + 1}")
            else:
                if not self.server_package() or self.is_client(origin):
                    return None
                level = "note"
                extra = rule.messages.get("not-handler", "")
        req = hit.req_text or "r"
        fix = rule.fixes.get(fw, rule.fixes.get("net/http", "")).format(req=req)
        if hit.helper is not None:
            gf, node = hit.helper_sink
            where = f"{gf.path.name}:{node.start_point[0] + 1}"
            msg = rule.messages["via-helper"].format(body=text(_body_arg(call, val) or call), helper=hit.helper.qualname,
                                                     what=hit.what, where=where, fix=fix)
            related.append((gf.source, node, f"{hit.helper.qualname} reads it here"))
        else:
            fn = call.child_by_field_name("function")
            msg = rule.messages["read"].format(call=text(fn), what=hit.what, fix=fix)
        msg = msg + extra + rule.messages.get("middleware-hint", "")
        return self.ctx.finding(scope.file.source, call, msg, level=level, related=related, function=scope.name)


def _composite_type(gofile, value):
    if value.type == "unary_expression" and value.child_by_field_name("operand") is not None:
        value = value.child_by_field_name("operand")
    if value.type == "composite_literal" and value.child_by_field_name("type") is not None:
        return gofile.qualify(value.child_by_field_name("type"))
    return None


def _max_bytes_error_refs(hf):
    """`*http.MaxBytesError` named in non-test code of the package: a MaxBytesReader is in place."""
    out = []
    for gf in hf.pkg.files:
        if gf.path.name.endswith("_test.go") or b"MaxBytesError" not in gf.source.data:
            continue
        for n in walk(gf.source.root):
            if n.type == "qualified_type" and text(n.child_by_field_name("name")) == "MaxBytesError" \
                    and gf.import_path(text(n.child_by_field_name("package"))) == "net/http":
                out.append((gf, n))
                break
    return out


def _request_text(val) -> str:
    node = val.node
    if node is not None and node.type == "selector_expression" and text(node).endswith(".Body"):
        return text(node)[: -len(".Body")]
    return ""


def _body_arg(call, val):
    args = call.child_by_field_name("arguments")
    if args is None:
        return None
    for a in args.named_children:
        if val.node is not None and a.start_byte <= val.node.start_byte < a.end_byte:
            return a
    return args.named_children[0] if args.named_children else None
