"""CL102 multipart-form-not-removed: temp files of a parsed multipart form that nobody removes.

Shapes and levels (see rules/CL102-multipart-form-not-removed.toml):
- ReadForm whose form is never removed, returned or stored: error;
- `r.MultipartForm = nil` (or another value) without RemoveAll first: error;
- a form parsed on a request that is a copy (derived here, by a middleware or router, Caddy): warning;
- a form parsed in a plain handler without RemoveAll: note;
- ParseMultipartForm(n) with a constant n above the threshold: note (merged into the finding above
  when both concern one call).
Functions that receive a *http.Request without being handlers get one level lower for the derived
shape, unless the request reaches them from a handler of the package.
"""

from __future__ import annotations

import re

from closelint.golang import http
from closelint.treeutil import text, walk

# No module-level TOKENS: the prefilter comes from the parsers catalog (users add rows in config).
_BASE_TOKENS = (b"MultipartForm", b"ReadForm")

_STORE_PARENTS = ("keyed_element", "literal_element", "send_statement")
_DROP = re.compile(rb"\.MultipartForm\s*=[^=]")


class _Rule:
    def __init__(self, ctx):
        cat, opts = ctx.catalogs, ctx.options
        self.parsers = {}
        for row in cat.get("parsers", []):
            for m in row.get("methods", []):
                self.parsers.setdefault(row["receiver"], set()).add(m)
        self.routers = {r["package"]: r for r in cat.get("routers", [])}
        self.wrappers = {(r["package"], r["function"]): r for r in cat.get("wrappers", [])}
        self.parse_methods = {m for ms in self.parsers.values() for m in ms}
        self.threshold = int(opts.get("max-memory-threshold", 8 << 20))
        self.release = re.compile(opts.get("release-function-pattern") or r"(?!x)x")
        self.getter = re.compile(opts.get("context-getter-pattern") or r"(?!x)x")
        self.messages = cat.get("messages", {})


class _Site:
    def __init__(self, call, req, req_text, method):
        self.call = call
        self.req = req  # Val of the request the form is parsed on
        self.req_text = req_text
        self.method = method


def check(ctx):
    rule = _Rule(ctx)
    tokens = set(_BASE_TOKENS) | {m.encode() for m in rule.parse_methods}
    if not any(t in src.data for src in ctx.targets for t in tokens):
        return  # before the package index: nothing is parsed for a unit without a form
    targets = [gf for gf in ctx.package.files if gf.source.is_target]
    if not targets:
        return
    hf = http.facts(ctx)
    an = _Analysis(ctx, hf, rule)
    for gofile in targets:
        found = []
        sites: dict = {}
        calls = hf.calls_in(gofile) if any(t in gofile.source.data for t in tokens) else ()
        for call in calls:  # a parse call names its method in the file's text
            fn = call.child_by_field_name("function")
            if fn is None or fn.type != "selector_expression":
                continue
            name = text(fn.child_by_field_name("field"))
            if name != "ReadForm" and name not in rule.parse_methods:
                continue
            scope = hf.scope_of(call)
            if scope is None or hf.info(scope).test:
                continue
            if name == "ReadForm":
                found += an.readform(scope, call)
                continue
            site = an.parse_site(scope, call, name)
            if site is not None:
                sites.setdefault(scope.node.id, (scope, []))[1].append(site)
        for scope, group in sites.values():
            found += an.parsed(scope, group)
        if _DROP.search(gofile.source.data):
            for scope in hf.file_scopes(gofile):
                if hf.info(scope).test:
                    continue
                for fa in hf.field_assigns(scope):
                    if fa.field == "MultipartForm":
                        found += an.dropped(scope, fa)
        seen = set()
        for f in found:
            key = (f.location.line, f.location.column)
            if key not in seen:
                seen.add(key)
                yield f


class _Analysis:
    def __init__(self, ctx, hf, rule):
        self.ctx = ctx
        self.hf = hf
        self.rule = rule
        self._removes = {}
        self._pkg_signals = None

    # ------------------------------------------------------------------ parse sites

    def parse_site(self, scope, call, name):
        hf, rule = self.hf, self.rule
        operand = call.child_by_field_name("function").child_by_field_name("operand")
        base = hf.classify(scope, operand)
        if base is None:
            return None
        if base.kind == "request" and name in rule.parsers.get("request", ()):
            return _Site(call, base, text(operand), name)
        if base.kind == "ctx" and name in rule.parsers.get(base.fw, ()):
            req = hf.ctx_request(scope, operand, call.start_byte)
            if req is None:
                return None
            req = http.Val("request", base.fw, req.derived, base.param, base.scope, req.node)
            return _Site(call, req, f"{text(operand)}.Request" + ("()" if base.fw == "echo" else ""), name)
        return None

    def parsed(self, scope, group):
        """One finding for the first parse of a function (removal), plus memory notes."""
        out = []
        first = group[0]
        memory = {id(s.call): self.memory(s) for s in group}
        earlier = first.method != "ParseMultipartForm" and self._parses_before(scope, first.call)
        if not earlier and not self.removed(scope, first) and not self.parsed_earlier(scope, first):
            level, msg, related = self.leak_message(scope, first)
            extra = memory.pop(id(first.call), None)
            if extra is not None:
                msg += self.rule.messages["memory-also"].format(call=_call_head(first.call), size=extra)
            out.append(self.ctx.finding(scope.file.source, first.call, msg, level=level, related=related,
                                        function=scope.name))
        for s in group:
            size = memory.get(id(s.call))
            if size is not None:
                msg = self.rule.messages["memory"].format(call=_call_head(s.call), size=size)
                out.append(self.ctx.finding(scope.file.source, s.call, msg, level="note", function=scope.name))
        return out

    def memory(self, site):
        if site.method != "ParseMultipartForm":
            return None
        args = site.call.child_by_field_name("arguments")
        if args is None or not args.named_children:
            return None
        n = self.hf.fold(args.named_children[0], self.hf.scope_of(site.call))
        if n is None or n <= self.rule.threshold:
            return None
        return _size(n)

    def leak_message(self, scope, site):
        origin = self.origin(scope, site.req)
        info = self.hf.info(origin)
        why = self.derived(scope, site.req, origin)
        call = _call_head(site.call)
        if why is not None:
            reason, node, gofile, via_handler = why
            level = "warning" if (info.handler or via_handler or self.from_handler(origin)) else "note"
            related = [(gofile.source, node, "this shows the request is a copy")] if node is not None else []
            msg = self.rule.messages["derived"].format(call=call, why=reason, req=site.req_text)
            return level, msg, related
        msg = self.rule.messages["plain"].format(call=call, req=site.req_text)
        version = self.ctx.go_version(scope.file.source)
        if version is not None and version < (1, 20) and site.req.fw in ("net/http", "gin", "echo", "caddy"):
            msg += self.rule.messages.get("http2-before-go120", "")
        return "note", msg, []

    def from_handler(self, origin, depth=0) -> bool:
        """A request function that a handler of the package calls (directly or through one more
        request function)."""
        if origin.function is None or origin.is_literal or depth > 2:
            return False
        for cscope, _call in self.hf.callers(origin.function.node):
            corigin = cscope
            while corigin is not None and not (self.hf.info(corigin).handler or self.hf.info(corigin).request_params):
                corigin = corigin.parent
            if corigin is None or self.hf.info(corigin).test:
                continue
            if self.hf.info(corigin).handler or self.from_handler(corigin, depth + 1):
                return True
        return False

    def origin(self, scope, req):
        if req.scope is not None:
            return req.scope
        s = scope
        while s is not None:
            info = self.hf.info(s)
            if info.handler or info.request_params or info.ctx_params:
                return s
            s = s.parent
        return scope

    def parsed_earlier(self, scope, site, depth=0) -> bool:
        """Every in-package caller parsed the form before calling (GetFile(r) then GetMetadata(r)
        -> r.FormFile("metadata")): the first parse is the one to report."""
        hf = self.hf
        origin = self.origin(scope, site.req)
        info = hf.info(origin)
        if info.handler or origin.function is None or origin.is_literal or site.req.param < 0 or depth > 2:
            return False
        calls = hf.callers(origin.function.node)
        if not calls:
            return False
        for cscope, ccall in calls:
            if self._parses_before(cscope, ccall):
                continue
            args = ccall.child_by_field_name("arguments")
            argv = args.named_children if args is not None else []
            v = hf.classify(cscope, argv[site.req.param]) if site.req.param < len(argv) else None
            if v is None or v.kind != "request" or not self.parsed_earlier(cscope, _Site(ccall, v, "", ""), depth + 1):
                return False
        return True

    def _parses_before(self, scope, at_call) -> bool:
        for s in self.chain(scope, None):
            for call in self.hf.own_calls(s):
                if call.start_byte >= at_call.start_byte:
                    continue
                if self._is_parse(s, call) or (self.hf.callee(s, call) is not None
                                               and self.has_parse(self.hf.callee(s, call))):
                    return True
        return False

    def _is_parse(self, scope, call) -> bool:
        fn = call.child_by_field_name("function")
        if fn is None or fn.type != "selector_expression":
            return False
        name = text(fn.child_by_field_name("field"))
        if name not in self.rule.parse_methods:
            return False
        return self.parse_site(scope, call, name) is not None

    def has_parse(self, fn, depth=0) -> bool:
        key = ("has_parse", fn.node.id)
        if key in self._removes:
            return self._removes[key]
        self._removes[key] = False
        scope = self.hf.scope_of_function(fn)
        got = False
        if scope is not None and depth < 3:
            for call in self.hf.own_calls(scope):
                callee = self.hf.callee(scope, call)
                if self._is_parse(scope, call) or (callee is not None and self.has_parse(callee, depth + 1)):
                    got = True
                    break
        self._removes[key] = got
        return got

    # ------------------------------------------------------------------ removal

    def chain(self, scope, origin):
        """scope and the scopes around it up to the request's origin (closures inside a handler)."""
        out = []
        s = scope
        while s is not None:
            out.append(s)
            if s is origin:
                break
            s = s.parent
        return out

    def removed(self, scope, site, depth=0) -> bool:
        hf = self.hf
        origin = self.origin(scope, site.req)
        for s in self.chain(scope, origin):
            if self._removes_in(s):
                return True
            if self._returns_form(s):
                return True
        fw = site.req.fw
        for sig in hf.signals:
            if sig.kind == "cleanup" and (sig.fw == fw or {sig.fw, fw} <= {"net/http", "caddy"}):
                return True
        info = hf.info(origin)
        if not info.handler and origin.function is not None and not origin.is_literal and site.req.param >= 0 \
                and depth < 2:
            calls = hf.callers(origin.function.node)
            if calls and all(self._caller_removes(cs, cc, site.req.param, depth) for cs, cc in calls):
                return True
        return False

    def _caller_removes(self, cscope, ccall, index, depth) -> bool:
        args = ccall.child_by_field_name("arguments")
        argv = args.named_children if args is not None else []
        if index >= len(argv):
            return False
        v = self.hf.classify(cscope, argv[index])
        if v is None or v.kind != "request":
            return False
        return self.removed(cscope, _Site(ccall, v, text(argv[index]), ""), depth + 1)

    def _removes_in(self, scope) -> bool:
        """scope's body (with its closures) removes a request's form, or passes the request to a
        package helper that does."""
        key = ("removes_in", scope.node.id)
        got = self._removes.get(key)
        if got is not None:
            return got
        got = False
        hf = self.hf
        for n in walk(scope.body) if scope.body is not None else ():
            if n.type != "call_expression":
                continue
            fn = n.child_by_field_name("function")
            if fn is None:
                continue
            inner = hf.scope_of(n) or scope
            if fn.type == "selector_expression" and text(fn.child_by_field_name("field")) == "RemoveAll":
                v = hf.classify(inner, fn.child_by_field_name("operand"))
                if v is not None and v.kind in ("form", "form_param") and _request_form(v):
                    got = True
                    break
            callee = hf.callee(inner, n)
            if callee is not None:
                idx = self.removes(callee)
                args = n.child_by_field_name("arguments")
                argv = args.named_children if args is not None else []
                for i in idx:
                    if i < len(argv):
                        v = hf.classify(inner, argv[i])
                        if v is not None and v.kind in ("request", "form", "ctx"):
                            got = True
                            break
                if got:
                    break
        self._removes[key] = got
        return got

    def removes(self, fn) -> set:
        """Indexes of the request, context or form parameters a package function removes the form of."""
        key = fn.node.id
        if key in self._removes:
            return self._removes[key]
        self._removes[key] = set()
        hf = self.hf
        scope = hf.scope_of_function(fn)
        out = set()
        for n in walk(scope.body) if scope is not None and scope.body is not None else ():
            if n.type != "call_expression":
                continue
            f = n.child_by_field_name("function")
            if f is None or f.type != "selector_expression" or text(f.child_by_field_name("field")) != "RemoveAll":
                continue
            v = hf.classify(hf.scope_of(n) or scope, f.child_by_field_name("operand"))
            if v is not None and v.kind in ("form", "form_param") and v.scope is scope and v.param >= 0:
                out.add(v.param)
        self._removes[key] = out
        return out

    def _returns_form(self, scope) -> bool:
        """`return r.MultipartForm, nil` / `form, err := c.MultipartForm(); return form`: the caller owns it."""
        for n in walk(scope.body, prune=lambda x: x.type == "func_literal") if scope.body is not None else ():
            if n.type == "return_statement":
                for e in (n.named_children[0].named_children if n.named_children else []):
                    v = self.hf.classify(scope, e)
                    if v is not None and v.kind == "form":
                        return True
        return False

    # ------------------------------------------------------------------ copies of the request

    def derived(self, scope, req, origin, depth=0):
        """(why, node, gofile, via a handler) when the request is a copy, else None."""
        hf, rule = self.hf, self.rule
        info = hf.info(origin)
        if req.derived is not None:
            return (f"made with {_call_head(req.derived)} on line {req.derived.start_point[0] + 1}", req.derived,
                    scope.file, False)
        for s in self.chain(scope, origin):
            got = self._copy_evidence(s)
            if got is not None:
                return (*got, False)
        fw = req.fw if req.fw != "net/http" or info.framework is None else info.framework
        if info.framework == "caddy":
            row = rule.routers.get("github.com/caddyserver/caddy/v2/modules/caddyhttp")
            return (f"{origin.name} is a Caddy handler: " + (row["why"] if row else "Caddy copies the request"),
                    None, scope.file, False)
        for why, node, gf, sfw in self.package_signals():
            if sfw == fw or {sfw, fw} <= {"net/http", "caddy"}:
                return why, node, gf, False
        if not info.handler and origin.function is not None and not origin.is_literal and req.param >= 0 \
                and depth < 2:
            for cscope, ccall in hf.callers(origin.function.node):
                args = ccall.child_by_field_name("arguments")
                argv = args.named_children if args is not None else []
                if req.param >= len(argv):
                    continue
                v = hf.classify(cscope, argv[req.param])
                if v is None or v.kind != "request":
                    continue
                corigin = self.origin(cscope, v)
                cinfo = hf.info(corigin)
                if cinfo.test:
                    continue
                got = self.derived(cscope, v, corigin, depth + 1)
                if got is not None:
                    reason, node, gf, via = got
                    msg = rule.messages["from-caller"].format(caller=cscope.name, why=reason)
                    return msg, node if node is not None else ccall, gf if node is not None else cscope.file, \
                        via or cinfo.handler
        return None

    def _copy_evidence(self, scope):
        """Calls in scope that show its request came through a router that copies requests, or
        carries values a middleware stored in its context: (why, node, gofile) or None."""
        hf, rule = self.hf, self.rule
        gf = scope.file
        for call in hf.own_calls(scope):
            fn = call.child_by_field_name("function")
            if fn is None or fn.type != "selector_expression":
                continue
            operand = fn.child_by_field_name("operand")
            name = text(fn.child_by_field_name("field"))
            pkg = hf.import_of(scope, operand)
            if pkg is not None:
                row = rule.routers.get(pkg)
                if row is not None and name in row.get("calls", ()):
                    return f"{row['why']}; the handler calls {text(fn)}", call, gf
                # request_id.GetReqID(r.Context()): a value a middleware put in the request's context
                if "." in pkg.split("/")[0] and rule.getter.search(name) and self._request_context_arg(scope, call):
                    return (f"it carries a value a middleware stored in its context ({_call_head(call)}), "
                            f"which takes r.WithContext(...)"), call, gf
                continue
            # r.Context().Value(key)
            if name == "Value" and operand.type == "call_expression":
                inner = operand.child_by_field_name("function")
                if inner is not None and inner.type == "selector_expression" \
                        and text(inner.child_by_field_name("field")) == "Context":
                    base = hf.classify(scope, inner.child_by_field_name("operand"))
                    args = call.child_by_field_name("arguments")
                    key = text(args.named_children[0]) if args is not None and args.named_children else ""
                    if base is not None and base.kind == "request" and not key.endswith(http._STDLIB_CONTEXT_KEYS):
                        return (f"it carries a value a middleware stored in its context ({_call_head(call)}), "
                                f"which takes r.WithContext(...)"), call, gf
        return None

    def _request_context_arg(self, scope, call) -> bool:
        args = call.child_by_field_name("arguments")
        if args is None or len(args.named_children) != 1:
            return False
        a = args.named_children[0]
        if a.type != "call_expression":
            return False
        f = a.child_by_field_name("function")
        if f is None or f.type != "selector_expression" or text(f.child_by_field_name("field")) != "Context":
            return False
        base = self.hf.classify(scope, f.child_by_field_name("operand"))
        return base is not None and base.kind == "request"

    def package_signals(self):
        """[(why, node, gofile, framework)]: the package hands its handlers copies of requests."""
        if self._pkg_signals is None:
            hf, rule = self.hf, self.rule
            out = []
            got = hf.imports_any(set(rule.routers))
            if got is not None:
                gf, path = got
                specs = [n for d in gf.source.root.named_children if d.type == "import_declaration"
                         for n in walk(d) if n.type == "import_spec"]
                node = next((n for n in specs if text(n.child_by_field_name("path")).strip('"`') == path), None)
                out.append((f"{rule.routers[path]['why']}, and this package imports it", node, gf, "net/http"))
            for sig in hf.signals:
                if sig.kind == "derive":
                    out.append((sig.why, sig.node, sig.file, sig.fw))
            for gf, call, row in hf.package_calls(rule.wrappers):
                out.append((f"{row['why']} ({gf.path.name}:{call.start_point[0] + 1})", call, gf,
                            row.get("framework", "net/http")))
            self._pkg_signals = out
        return self._pkg_signals

    # ------------------------------------------------------------------ r.MultipartForm = nil

    def dropped(self, scope, fa):
        hf = self.hf
        base = hf.classify(scope, fa.operand)
        if base is None or base.kind != "request":
            return []
        if fa.value is not None:
            v = hf.classify(scope, fa.value)
            if v is not None and v.kind in ("form", "form_param"):
                return []
        at = fa.stmt.start_byte
        want = text(fa.operand)
        origin = self.origin(scope, base)
        chain = self.chain(scope, origin)
        evidence = False
        for s in chain:
            for n in walk(s.body) if s.body is not None else ():
                if n.start_byte >= at:
                    break
                if n.type == "call_expression":
                    fn = n.child_by_field_name("function")
                    if fn is not None and fn.type == "selector_expression":
                        name = text(fn.child_by_field_name("field"))
                        op = fn.child_by_field_name("operand")
                        if name == "RemoveAll":
                            v = hf.classify(hf.scope_of(n) or s, op)
                            if v is not None and v.kind in ("form", "form_param"):
                                return []
                        if name in self.rule.parsers.get("request", ()) and text(op) == want:
                            evidence = True
                elif n.type == "selector_expression" and text(n.child_by_field_name("field")) == "MultipartForm" \
                        and text(n.child_by_field_name("operand")) == want:
                    evidence = True
        if not evidence:
            return []
        msg = self.rule.messages["dropped"].format(target=text(fa.target), value=text(fa.value) if fa.value else "...")
        return [self.ctx.finding(scope.file.source, fa.stmt, msg, level="error", function=scope.name)]

    # ------------------------------------------------------------------ ReadForm

    def readform(self, scope, call):
        hf = self.hf
        fn = call.child_by_field_name("function")
        base = hf.classify(scope, fn.child_by_field_name("operand"))
        if base is None or base.kind != "mreader":
            return []
        parent = call.parent
        while parent is not None and parent.type == "parenthesized_expression":
            parent = parent.parent
        head = _call_head(call)
        if parent is not None and parent.type == "expression_statement":
            return [self.ctx.finding(scope.file.source, call, self.rule.messages["readform-discarded"].format(call=head),
                                     level="error", function=scope.name)]
        if parent is None or parent.type != "expression_list":
            return []
        stmt = parent.parent
        if stmt is None or stmt.type not in ("short_var_declaration", "assignment_statement") \
                or stmt.child_by_field_name("right") != parent:
            return []  # returned, or passed on: someone else owns it
        lhs = stmt.child_by_field_name("left").named_children
        if not lhs:
            return []
        target = lhs[0]
        if target.type != "identifier":
            return []  # stored in a field or a map
        name = text(target)
        if name == "_":
            return [self.ctx.finding(scope.file.source, call, self.rule.messages["readform-discarded"].format(call=head),
                                     level="error", function=scope.name)]
        if self.form_kept(scope, name, stmt):
            return []
        return [self.ctx.finding(scope.file.source, call, self.rule.messages["readform"].format(call=head, form=name),
                                 level="error", function=scope.name)]

    def form_kept(self, scope, name, stmt) -> bool:
        """The form named `name` is removed, returned, stored or handed to an owner after stmt."""
        hf = self.hf
        names = {name}
        root = scope.declaration if scope.is_literal else scope
        body = root.body
        if body is None:
            return True
        for n in walk(body):
            if n.start_byte < stmt.start_byte or n.type != "identifier" or text(n) not in names:
                continue
            p = n.parent
            if p is None:
                continue
            if p.type == "selector_expression" and p.child_by_field_name("operand") == n:
                if text(p.child_by_field_name("field")) == "RemoveAll":
                    return True
                continue
            if p.type == "expression_list":
                gp = p.parent
                if gp is not None and gp.type == "return_statement":
                    return True
                if gp is not None and gp.type in ("short_var_declaration", "assignment_statement") \
                        and gp.child_by_field_name("right") == p:
                    left = gp.child_by_field_name("left").named_children
                    i = p.named_children.index(n) if n in p.named_children else -1
                    tgt = left[i] if 0 <= i < len(left) else None
                    if tgt is None:
                        continue
                    if tgt.type == "identifier":
                        names.add(text(tgt))  # an alias
                    elif text(tgt) != "_":
                        return True  # stored: s.form = f, m[k] = f
                continue
            if p.type in _STORE_PARENTS:
                return True
            if p.type == "argument_list":
                call = p.parent
                cname = http.called_name(call)
                if cname == "append":
                    return True
                inner = hf.scope_of(call) or scope
                callee = hf.callee(inner, call)
                idx = [a for a in p.named_children if a.type != "comment"].index(n) \
                    if n in p.named_children else -1
                if callee is not None:
                    if idx in self.removes(callee):
                        return True
                    continue
                if self.rule.release.search(cname):
                    return True
                continue
        return False


def _request_form(v) -> bool:
    """A form that belongs to a request: r.MultipartForm, c.MultipartForm(), or a form parameter."""
    if v.kind == "form_param":
        return True
    return v.node is not None and (v.node.type == "selector_expression" or v.fw in ("gin", "echo"))


def _call_head(call) -> str:
    """`r.ParseMultipartForm(32 << 20)` (long arguments shortened)."""
    return http.short(call)


def _size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB"
    return f"{n} bytes"
