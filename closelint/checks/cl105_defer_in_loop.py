"""CL105 defer-in-loop: a release deferred inside a for body runs only when the function returns.

Where the loops are and whether one goes round again after the defer come from the shared loop
module (closelint.golang.loops, over the function's CFG from closelint.golang.flow); this module
decides what a deferred call releases and whether keeping it to the function's end is deliberate.
"""

from __future__ import annotations

import re

from closelint.golang import facts, flow, loops
from closelint.treeutil import ancestors, paths_at, text, walk, word_offsets, word_spans

TOKENS = (b"defer",)

_FUNCS = facts.FUNC_NODES


def _NO_FUNCS(n) -> bool:  # prune for walk: stay out of nested function literals
    return n.type in _FUNCS


_inside = loops.inside

# ------------------------------------------------------------------------------ finding defers

# A top-level function or method starts a line with `func ` in gofmt-formatted code (a function
# literal is written `func(`, and never starts a line inside a formatted body).


def may_defer_in_loop(data: bytes) -> bool:
    """Byte-level prefilter, before any tree is built: does some `defer` follow a `for` within the
    same top-level function? Text in comments and strings only makes it say yes more often; code that
    is not gofmt-formatted can only merge functions (also a yes)."""
    if b"for" not in data:
        return False
    searched = 0  # the text of the current function before this offset holds no `for`
    for pos in word_offsets(data, b"defer"):
        start = data.rfind(b"\nfunc ", 0, pos) + 1  # the top-level function the defer is in (0: none)
        if next(word_offsets(data, b"for", max(start, searched), pos), None) is not None:
            return True
        searched = pos
    return False


def defers_in_loops(root, data: bytes) -> list:
    """(defer statement, its loops innermost first, its function) for every defer whose innermost
    enclosing for statement or function is a for statement. Defers are found from the text (no query
    over the whole tree), their ancestors walking down from the root."""
    out = []
    keywords = word_spans(data, b"defer")
    for path in paths_at(root, keywords):
        if len(path) < 2 or path[-1].type != "defer" or path[-2].type != "defer_statement":
            continue  # in a comment, a string, an identifier
        fors, func = [], None
        for i in range(len(path) - 3, -1, -1):
            n = path[i]
            if n.type in _FUNCS:
                func = n
                break
            if n.type == "for_statement":
                fors.append(n)
        if fors and func is not None:  # the innermost of them is a loop of the defer's own function
            out.append((path[-2], fors, func))
    return out


# ------------------------------------------------------------------------------------ the rule

class _Release:
    __slots__ = ("kind", "call", "recv", "roots", "method", "acquire", "has_call", "contexts", "timer")

    def __init__(self, kind, call, recv, roots, method="", acquire=(), has_call=False, contexts=None):
        self.kind = kind
        self.call = call  # the release call node
        self.recv = recv  # receiver expression node (or None)
        self.roots = roots  # identifier names the release is about
        self.method = method
        self.acquire = acquire
        self.has_call = has_call  # the receiver expression computes something (a call)
        # cancel functions: the contexts bound with them (`ctx, cancel := ...`), None when unseen
        self.contexts = contexts
        # a cancel function whose context holds a timer (WithTimeout, WithDeadline); None when it is
        # only named like a cancel function
        self.timer = False


def _as_list(value) -> list:
    value = [value] if isinstance(value, str) else value
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _cl101(ctx) -> tuple:
    """From CL101's catalog, with the user's rows, read tolerantly (the shape may gain keys), once
    per unit: the `release` lists of its rows (tuples of method names; dotted entries left out); its
    `releasers` (import path, function, argument index): package functions that release an argument
    (`pgx.CollectRows(rows, ...)` closes rows); its `non-resources` ((receiver type or import path,
    name): calls whose result holds nothing, httptest.ResponseRecorder.Result); and its `types`
    ((import path, function) -> result types), so that a receiver such as `rec` gets a type."""
    found = ctx.shared.get("cl105.cl101")
    if found is not None:
        return found
    lists, releasers = [], []
    non_resources, known = set(), {}
    catalogs = ctx.catalogs_of("CL101") or {}
    for row in catalogs.get("non-resources", []) or []:
        if not isinstance(row, dict):
            continue
        for r in _as_list(row.get("receivers", row.get("receiver"))):
            non_resources |= {(r.lstrip("*"), n) for n in _as_list(row.get("methods", row.get("method")))}
        if isinstance(row.get("package"), str):
            non_resources |= {(row["package"], n) for n in _as_list(row.get("functions", row.get("function")))}
    for row in catalogs.get("types", []) or []:
        if isinstance(row, dict) and isinstance(row.get("package"), str):
            for n in _as_list(row.get("functions", row.get("function"))):
                known[(row["package"], n)] = _as_list(row.get("results", []))
    for table in catalogs.values():
        if not isinstance(table, list):
            continue
        for row in table:
            if not isinstance(row, dict):
                continue
            rel = row.get("release")
            if isinstance(rel, str):
                rel = [rel]
            if isinstance(rel, list):
                names = tuple(r for r in rel if isinstance(r, str) and r.isidentifier())
                if names:
                    lists.append(names)
    for row in catalogs.get("releasers", []) or []:
        if not isinstance(row, dict) or not isinstance(row.get("package"), str):
            continue
        funcs = row.get("functions", row.get("function", []))
        funcs = [funcs] if isinstance(funcs, str) else funcs
        arg = row.get("argument", 0)
        if not isinstance(funcs, list) or not isinstance(arg, int):
            continue
        releasers += [(row["package"], f, arg) for f in funcs if isinstance(f, str)]
    found = ctx.shared["cl105.cl101"] = (tuple(lists), tuple(releasers), frozenset(non_resources), known)
    return found


def _cl101_release_lists(ctx) -> tuple:
    return _cl101(ctx)[0] if ctx.options.get("use-cl101-catalog", True) else ()


def _cl101_releasers(ctx) -> tuple:
    return _cl101(ctx)[1] if ctx.options.get("use-cl101-catalog", True) else ()


def _releases_nothing(ctx, scope, rel) -> bool:
    """Was the released value made by a call that CL101's catalog lists as holding nothing
    (`res := rec.Result(); defer res.Body.Close()`: an in-memory body)? Followed through locals
    assigned once (`rec := httptest.NewRecorder()`) and field selectors, a few steps deep."""
    if rel.recv is None or not ctx.options.get("use-cl101-catalog", True):
        return False
    _, _, non_resources, known = _cl101(ctx)
    if not non_resources:
        return False
    expr = rel.recv
    types = None
    gofile = scope.file
    for _ in range(6):
        while expr.type in ("selector_expression", "parenthesized_expression"):
            inner = expr.child_by_field_name("operand") if expr.type == "selector_expression" else (
                expr.named_children[0] if expr.named_children else None)
            if inner is None:
                return False
            expr = inner
        if expr.type == "call_expression":
            fn = expr.child_by_field_name("function")
            if fn is None or fn.type != "selector_expression":
                return False
            operand, name = fn.child_by_field_name("operand"), text(fn.child_by_field_name("field"))
            path = gofile.import_path(text(operand)) if operand is not None and operand.type == "identifier" else None
            if types is None:
                types = flow.Types(ctx, scope, known)
            if path is not None and types.bindings.resolve(operand) is None:
                return (path, name) in non_resources
            rtype = types.of(operand)
            return bool(rtype) and (rtype.lstrip("*"), name) in non_resources
        if expr.type != "identifier":
            return False
        b = flow.bindings(ctx, scope).resolve(expr)
        if b is None or b.defs or b.value is None or b.kind not in ("short", "var"):
            return False
        expr = b.value
    return False


def _tables(ctx):
    methods = {}
    for row in ctx.catalogs.get("releases", []):
        if isinstance(row, dict) and isinstance(row.get("method"), str):
            methods[row["method"]] = row
    for names in _cl101_release_lists(ctx):
        for name in names:
            methods.setdefault(name, {"method": name, "kind": "close"})
    constructors = {(r.get("package"), r.get("function")): bool(r.get("timer", False))
                    for r in ctx.catalogs.get("cancel-constructors", []) if isinstance(r, dict)}
    return methods, constructors


def _roots(expr) -> tuple[list[str], bool]:
    """The identifiers an expression is made of (operands of selectors and indexes, not field
    names), and whether it holds a call."""
    roots, has_call = [], False
    for n in walk(expr, prune=_NO_FUNCS):
        if n.type == "call_expression":
            has_call = True
        elif n.type == "identifier":
            roots.append(text(n))
    return roots, has_call


def _release_in_call(ctx, gofile, call, methods, constructors, cancel_re, helper_re, scope):
    fn = call.child_by_field_name("function")
    if fn is None:
        return None
    if fn.type == "parenthesized_expression" and fn.named_children:
        fn = fn.named_children[0]
    if fn.type == "selector_expression":
        operand = fn.child_by_field_name("operand")
        name = text(fn.child_by_field_name("field"))
        is_pkg = operand is not None and operand.type == "identifier" and gofile.import_path(text(operand)) is not None
        if not is_pkg and name in methods:
            row = methods[name]
            roots, has_call = _roots(operand)
            return _Release(row.get("kind", "close"), call, operand, roots, name,
                            tuple(row.get("acquire", ())), has_call)
        if is_pkg and helper_re is not None and helper_re.search(name):
            return _helper_release(call)
        return None
    if fn.type == "identifier":
        name = text(fn)
        if name == "close":
            return None  # the builtin closes a channel
        is_cancel, contexts, timer = _cancel_of(ctx, gofile, scope, name, constructors, cancel_re)
        if is_cancel:
            rel = _Release("cancel", call, None, [name], contexts=contexts)
            rel.timer = timer
            return rel
        if helper_re is not None and helper_re.search(name):
            return _helper_release(call)
        local = ctx.package.functions.get(name)
        if local is not None and _closes_a_parameter(local, methods):
            return _helper_release(call)
    return None


def _helper_release(call):
    args = call.child_by_field_name("arguments")
    roots, has_call = [], False
    for a in (args.named_children if args is not None else ()):
        r, h = _roots(a)
        roots += r
        has_call = has_call or h
    if not roots:
        return None
    return _Release("close", call, None, roots, has_call=has_call)


def _closes_a_parameter(fn, methods) -> bool:
    names = {p.name for p in fn.params if p.name and p.name != "_"}
    body = fn.body
    if body is None or not names:
        return False
    for n in walk(body, prune=_NO_FUNCS):
        if n.type == "call_expression":
            f = n.child_by_field_name("function")
            if f is not None and f.type == "selector_expression":
                op = f.child_by_field_name("operand")
                if op is None or text(f.child_by_field_name("field")) not in methods:
                    continue
                while op.type in ("selector_expression", "index_expression", "parenthesized_expression"):
                    op = op.child_by_field_name("operand") or (op.named_children[0] if op.named_children else op)
                    if op.type == "parenthesized_expression" and not op.named_children:
                        break
                if op.type == "identifier" and text(op) in names:
                    return True
    return False


def _cancel_of(ctx, gofile, scope, name, constructors, cancel_re) -> tuple[bool, list | None, bool]:
    """Is `name` a cancel function; the contexts bound with it (`ctx, cancel := ...`); does one of
    its constructors start a timer."""
    if scope is not None:
        s = scope
        while s is not None:
            body = s.body
            bound = _bound_by_constructor(gofile, body, name, constructors) if body is not None else []
            if bound:
                return True, [c for c, _ in bound], any(t for _, t in bound)
            s = s.parent
        t = facts.local_types(ctx, scope).get(name, "")
        if t in ("context.CancelFunc", "context.CancelCauseFunc"):
            return True, None, False
    # named like one (`wrCancel`): it cancels something, maybe not a context
    return bool(cancel_re is not None and cancel_re.search(name)), None, None


def _bound_by_constructor(gofile, body, name, constructors) -> list:
    """(first name, timer) of the `ctx, name := context.WithX(...)` bindings of name in body."""
    out = []
    for n in walk(body, prune=_NO_FUNCS):
        if n.type not in ("short_var_declaration", "assignment_statement", "var_spec"):
            continue
        left = n.child_by_field_name("left")
        right = n.child_by_field_name("right") or n.child_by_field_name("value")
        names = left.named_children if left is not None else n.children_by_field_name("name")
        if right is None or len(right.named_children) != 1 or len(names) < 2:
            continue
        if text(names[1]) != name:
            continue
        call = right.named_children[0]
        if call.type == "call_expression":
            timer = constructors.get(facts.call_name(gofile, call))
            if timer is not None:
                out.append((text(names[0]), timer))
    return out


def _release_of(ctx, gofile, defer, tables, scope, cancel_re, helper_re):
    methods, constructors = tables
    call = next((c for c in defer.named_children if c.type == "call_expression"), None)
    if call is None:
        return None
    fn = call.child_by_field_name("function")
    if fn is not None and fn.type == "func_literal":
        body = fn.child_by_field_name("body")
        if body is None:
            return None
        params = _literal_arguments(fn, call)
        for n in walk(body, prune=_NO_FUNCS):
            if n.type == "call_expression":
                rel = _release_in_call(ctx, gofile, n, methods, constructors, cancel_re, helper_re, scope)
                if rel is not None:
                    if _on_error_only(n, body):
                        return None  # cleanup on failure: on success the resource is meant to live on
                    rel.roots = [r for name in rel.roots for r in params.get(name, [name])]
                    return rel
        return None
    return _release_in_call(ctx, gofile, call, methods, constructors, cancel_re, helper_re, scope)


_ERR_NAME = re.compile(r"(?i)err")


def _on_error_only(call, body) -> bool:
    """Is the release inside `if err != nil { ... }` (or `if retErr != nil`) within the deferred literal?"""
    for n in ancestors(call):
        if n.id == body.id:
            break
        if n.type == "if_statement":
            cond = n.child_by_field_name("condition")
            if cond is not None and cond.type == "binary_expression" \
                    and text(cond.child_by_field_name("operator")) == "!=" \
                    and text(cond.child_by_field_name("right")) == "nil" \
                    and _ERR_NAME.search(text(cond.child_by_field_name("left"))):
                return True
    return False


def _literal_arguments(func_lit, call) -> dict[str, list[str]]:
    """`defer func(f *os.File) {...}(file)`: parameter name -> the identifiers of its argument."""
    params = func_lit.child_by_field_name("parameters")
    args = call.child_by_field_name("arguments")
    if params is None or args is None:
        return {}
    names = []
    for decl in params.named_children:
        if decl.type in ("parameter_declaration", "variadic_parameter_declaration"):
            names += [text(n) for n in decl.children_by_field_name("name")]
    out = {}
    for name, arg in zip(names, args.named_children):
        out[name] = _roots(arg)[0]
    return out


_ERROR_VAR = re.compile(r"^(?:err\w*|\w*Err(?:or)?)$")
_CARRIERS = ("parenthesized_expression", "literal_element", "literal_value", "composite_literal",
             "type_assertion_expression")


def _stored(loop, names: set[str], defer, accessors=frozenset()) -> bool:
    """Is one of names kept beyond the iteration inside loop: appended, put in a slice or map slot,
    sent on a channel? Wrapping calls (bufio.NewReader(f)) and composite literals carry the value.

    With accessors, the resource's address counts too (`l.Addr()`, `srv.URL`, `srv.Listener.Addr()`),
    kept directly or through locals made from it (`u, err := url.Parse(... l.Addr() ...)`,
    `urls[i] = *u`): it refers to the resource, so the loop means the resources to be alive together
    (ports reserved so that they stay distinct, servers whose URLs are used after the loop)."""
    body = loop.child_by_field_name("body")
    if body is None:
        return False
    plain, carried = set(names), set()
    for _ in range(3):
        derived: set[str] = set()
        for ident in walk(body):
            if ident.type != "identifier" or _inside(ident, defer):
                continue
            name = text(ident)
            if name not in plain and name not in carried:
                continue
            fate = _fate(ident, name in carried and name not in plain, accessors)
            if fate is True:
                return True
            if fate:
                derived |= fate
        derived -= plain | carried
        if not derived:
            break
        carried |= derived
    return False


def _fate(ident, address: bool, accessors):
    """Where the value of ident goes: True when it is kept beyond the iteration (a collection slot,
    append, a send); for an address, the set of locals it is assigned to; otherwise None."""
    n = ident
    member = False  # went through a selector or a method call: no longer the value itself
    it = ancestors(ident)
    for p in it:
        t = p.type
        if t == "selector_expression" and p.child_by_field_name("operand") is not None \
                and p.child_by_field_name("operand").id == n.id:
            member = True
            address = address or text(p.child_by_field_name("field")) in accessors
            n = p
            continue
        if t == "call_expression" and p.child_by_field_name("function") is not None \
                and p.child_by_field_name("function").id == n.id:
            n = p  # the method call of a selector chain: l.Addr()
            continue
        if member and not address:
            return None  # f.Stat(), conn.Read(buf): something else than the resource or its address
        if t in _CARRIERS or (address and t == "binary_expression"
                                and text(p.child_by_field_name("operator")) == "+"):
            n = p  # `"tcp://" + l.Addr().String()` is still the address
            continue
        if t == "keyed_element":
            if p.named_children and n.id == p.named_children[-1].id:
                n = p
                continue
            return None
        if t == "unary_expression" and text(p.child_by_field_name("operator")) in ("&", "*"):
            n = p
            continue
        if t == "argument_list":
            owner = next(it, None)
            callee = owner.child_by_field_name("function") if owner is not None else None
            if callee is not None and text(callee) == "append":
                return True if p.named_children and p.named_children[0].id != n.id else None
            if owner is None:
                return None
            n = owner  # wrapped: bufio.NewReader(f), fmt.Sprint(l.Addr())
            member = False
            continue
        if t == "send_statement":
            value = p.child_by_field_name("value")
            return True if value is not None and value.id == n.id else None
        if t == "expression_list":
            stmt = next(it, None)
            if stmt is None or stmt.type not in ("assignment_statement", "short_var_declaration"):
                return None
            right, left = stmt.child_by_field_name("right"), stmt.child_by_field_name("left")
            if right is None or right.id != p.id or left is None:
                return None
            values = [c.id for c in p.named_children]
            targets = left.named_children
            if len(values) == len(targets):
                picked = [targets[values.index(n.id)]]
            elif len(values) == 1:
                picked = list(targets)  # u, err := url.Parse(...)
            else:
                return None
            # a slot of a collection keeps every iteration's value; a plain variable or field
            # keeps only the last one, so the others are not needed beyond their iteration
            if any(tg.type == "index_expression" for tg in picked):
                return True
            if address:
                return {text(tg) for tg in picked if tg.type == "identifier"
                        and text(tg) != "_" and not _ERROR_VAR.match(text(tg))}
            return None
        return None
    return None


def _used_after(loop, names: set[str], defer) -> bool:
    """Is one of names referenced in the loop body after the defer statement (outside it)?"""
    body = loop.child_by_field_name("body")
    if body is None:
        return False
    for n in walk(body):
        if n.end_byte <= defer.end_byte:
            continue
        if n.type == "identifier" and text(n) in names:
            return True
    return False


def _derived(loop, names: set[str], through_calls: bool, rounds: int = 3) -> set[str]:
    """names, plus the loop body's variables assigned from them: aliases and fields
    (`timeout = timer.C`), and with through_calls what calls make of them
    (`stream, err := api.Watch(ctx)` derives stream from ctx)."""
    body = loop.child_by_field_name("body")
    out = set(names)
    if body is None:
        return out
    assigns = [n for n in walk(body, prune=_NO_FUNCS) if n.type in ("short_var_declaration", "assignment_statement")]
    for _ in range(rounds):
        grown = False
        for a in assigns:
            right, left = a.child_by_field_name("right"), a.child_by_field_name("left")
            if right is None or left is None:
                continue
            lhs, rhs = left.named_children, right.named_children
            if len(lhs) == len(rhs):
                pairs = list(zip(lhs, rhs))
            elif len(rhs) == 1:
                pairs = [(t, rhs[0]) for t in lhs]
            else:
                continue
            for target, value in pairs:
                if target.type != "identifier" or text(target) in out or text(target) == "_":
                    continue
                if _holds(value, out, through_calls):
                    out.add(text(target))
                    grown = True
        if not grown:
            break
    return out


def _holds(expr, names, through_calls) -> bool:
    if through_calls:
        return any(n.type == "identifier" and text(n) in names for n in walk(expr, prune=_NO_FUNCS))
    n = expr
    while n.type in ("selector_expression", "parenthesized_expression", "unary_expression"):
        if n.type == "unary_expression" and text(n.child_by_field_name("operator")) != "&":
            return False
        inner = n.child_by_field_name("operand") if n.type != "parenthesized_expression" else (
            n.named_children[0] if n.named_children else None)
        if inner is None:
            return False
        n = inner
    return n.type == "identifier" and text(n) in names


def _alternatives(ctx, methods, method: str) -> set[str]:
    """Methods that release the same thing as method: itself, a row's `also` list (Rollback: Commit),
    and the other names of CL101 rows that list it (`release = ["Commit", "Rollback"]`)."""
    out = {method}
    row = methods.get(method) or {}
    also = row.get("also", [])
    out |= {a for a in (also if isinstance(also, list) else [also]) if isinstance(a, str)}
    for names in _cl101_release_lists(ctx):
        if method in names:
            out |= set(names)
    return out


def _released_explicitly(ctx, gofile, loop, func, rel, defer, methods, helper_re) -> bool:
    """Is the same thing also released by a plain (not deferred) call in the loop body: the defer is
    then a safety net for early returns (`batch.Close(); batch = db.NewBatch(); defer batch.Close()`,
    `err = errors.Join(err, w.Close())`)."""
    body = loop.child_by_field_name("body")
    if body is None:
        return False
    recv = text(rel.recv) if rel.recv is not None else None
    same = _alternatives(ctx, methods, rel.method) if rel.method else set(methods)
    local_helpers = None
    deferred: list = []  # the loop's defer statements: calls inside them are not plain calls
    for n in walk(body, prune=_NO_FUNCS):
        if n.type == "defer_statement":
            deferred.append(n)
            continue
        if n.type != "call_expression" or any(_inside(n, d) for d in deferred):
            continue
        fn = n.child_by_field_name("function")
        if fn is None:
            continue
        if rel.kind == "cancel":
            if fn.type == "identifier" and text(fn) == rel.roots[0]:
                return True
            continue
        if fn.type == "selector_expression" and recv is not None:
            if text(fn.child_by_field_name("field")) in same and text(fn.child_by_field_name("operand")) == recv:
                return True
        args = n.child_by_field_name("arguments")
        if recv is None or args is None or not any(text(a) == recv for a in args.named_children):
            continue
        name = text(fn.child_by_field_name("field")) if fn.type == "selector_expression" else text(fn)
        if helper_re is not None and helper_re.search(name):
            return True
        if fn.type == "selector_expression":
            path = gofile.import_path(text(fn.child_by_field_name("operand")))
            for rpkg, rfunc, rarg in _cl101_releasers(ctx):
                if path == rpkg and name == rfunc and rarg < len(args.named_children) \
                        and text(args.named_children[rarg]) == recv:
                    return True
        if fn.type == "identifier":
            local = ctx.package.functions.get(name)
            if local is not None and _closes_a_parameter(local, methods):
                return True
            if local_helpers is None:
                local_helpers = _closing_literals(func, methods)
            if name in local_helpers:
                return True
    return False


def _closing_literals(func, methods) -> set[str]:
    """Local variables bound to function literals that release one of their parameters
    (`flush := func(b dbm.Batch) error { defer b.Close(); ... }`), in func (the function around the loop)."""
    body = func.child_by_field_name("body") if func is not None else None
    out = set()
    for n in walk(body, prune=_NO_FUNCS) if body is not None else ():
        if n.type != "short_var_declaration":
            continue
        left, right = n.child_by_field_name("left"), n.child_by_field_name("right")
        if left is None or right is None or len(left.named_children) != len(right.named_children):
            continue
        for name, value in zip(left.named_children, right.named_children):
            if value.type == "func_literal" and _literal_closes_a_parameter(value, methods):
                out.add(text(name))
    return out


def _literal_closes_a_parameter(lit, methods) -> bool:
    params = lit.child_by_field_name("parameters")
    names = set()
    for decl in params.named_children if params is not None else ():
        names |= {text(n) for n in decl.children_by_field_name("name")}
    body = lit.child_by_field_name("body")
    for n in walk(body, prune=_NO_FUNCS) if body is not None else ():
        if n.type == "call_expression":
            f = n.child_by_field_name("function")
            if f is not None and f.type == "selector_expression" \
                    and text(f.child_by_field_name("field")) in methods \
                    and text(f.child_by_field_name("operand")) in names:
                return True
    return False


def _in_goroutine(loop, names: set[str]) -> bool:
    """Is one of names used by a `go` statement in the loop body (its call or its func literal)?"""
    body = loop.child_by_field_name("body")
    for n in walk(body) if body is not None else ():
        if n.type == "go_statement":
            if any(i.type == "identifier" and text(i) in names for i in walk(n)):
                return True
    return False


def _bounded_header(loop) -> bool:
    """A range loop or a counted `for init; cond; post` loop (not `for {}` nor `for cond {}`)."""
    for c in loop.named_children:
        if c.type == "range_clause":
            return True
        if c.type == "for_clause":
            return c.child_by_field_name("condition") is not None and c.child_by_field_name("update") is not None
    return False


def _waits_after(func, loop) -> bool:
    """Does func (the function around loop) wait for something after it (`wg.Wait()`, `g.Wait()`)?"""
    body = func.child_by_field_name("body") if func is not None else None
    for n in walk(body, prune=_NO_FUNCS) if body is not None else ():
        if n.type == "call_expression" and n.start_byte >= loop.end_byte:
            fn = n.child_by_field_name("function")
            if fn is not None and fn.type == "selector_expression" and text(fn.child_by_field_name("field")) == "Wait" \
                    and not (n.child_by_field_name("arguments") and n.child_by_field_name("arguments").named_children):
                return True
    return False


def _acquired_in(loop, release) -> str | None:
    """For a lock: the `mu.Lock()` call on the same receiver inside the loop, as text."""
    if not release.acquire or release.recv is None:
        return None
    recv = text(release.recv)
    body = loop.child_by_field_name("body")
    for n in walk(body, prune=_NO_FUNCS) if body is not None else ():
        if n.type == "call_expression" and n.start_byte < release.call.start_byte:
            f = n.child_by_field_name("function")
            if f is not None and f.type == "selector_expression" \
                    and text(f.child_by_field_name("field")) in release.acquire \
                    and text(f.child_by_field_name("operand")) == recv:
                return text(n)
    return None


def _short(node_text: str, limit: int = 60) -> str:
    one = " ".join(node_text.split())
    return one if len(one) <= limit else one[: limit - 3] + "..."


def check(ctx):
    tables = None
    opts = ctx.options
    settings = None
    for src in ctx.targets:
        # before any tree: the text must show a `defer` after a `for` in one top-level function
        if src.lang != "go" or not may_defer_in_loop(src.data):
            continue
        candidates = defers_in_loops(src.root, src.data)
        if not candidates:
            continue
        gofile = ctx.package.file_of(src)
        if gofile is None:
            continue
        if tables is None:
            tables = _tables(ctx)
            settings = {
                "max_fixed": int(opts.get("max-fixed-iterations", 4)),
                "test_level": opts.get("test-level", "note"),
                "constant_level": opts.get("constant-iterations-level", "note"),
                "memory_level": opts.get("finite-memory-level", "note"),
                "accessors": frozenset(a for a in opts.get("address-accessors", []) if isinstance(a, str)),
                "messages": ctx.catalogs.get("messages", {}) or {},
                "cancel_re": ctx.pattern("cancel-name-pattern"),
                "helper_re": ctx.pattern("release-helper-pattern"),
            }
        for defer, fors, func in candidates:
            scope = facts.scope_at(ctx, func)
            if scope is None:
                continue
            rel = _release_of(ctx, gofile, defer, tables, scope, settings["cancel_re"], settings["helper_re"])
            if rel is None:
                continue
            finding = _judge(ctx, gofile, defer, rel, fors, func, scope, tables[0], settings)
            if finding is not None:
                yield finding



def _judge(ctx, gofile, defer, rel, fors, func, scope, methods, settings):
    # the element of a pre-existing collection (`for _, c := range conns { defer c.Close() }`)
    if not rel.has_call and any(r in loops.loop_variables(lp) for lp in fors for r in rel.roots):
        return None
    resolve = loops.constants(ctx, scope)
    acquire = None
    culprit = None
    iterating = []  # the loops that go round after the defer, innermost first, up to the culprit
    for i, loop in enumerate(fors):
        if not loops.iterates_after(ctx, defer, loop, scope):
            continue
        iterating.append(loop)
        acquire = _acquired_in(loop, rel)
        count = loops.fixed_iterations(loop, resolve)
        if count is not None and (count <= 1 or (count <= settings["max_fixed"] and acquire is None)):
            continue
        culprit = loop
        break
    if culprit is None:
        return None
    outer = fors[i + 1:]

    def all_iterating():  # and the loops outside the culprit that go round too, computed on demand
        yield from iterating
        yield from (lp for lp in outer if loops.iterates_after(ctx, defer, lp, scope))
    if _released_explicitly(ctx, gofile, culprit, func, rel, defer, methods, settings["helper_re"]) \
            or _releases_nothing(ctx, scope, rel):
        return None
    if not rel.acquire and not rel.has_call:
        # what the release is about: the receiver, or for a cancel function the contexts bound with it
        about = set(rel.contexts or ()) if rel.kind == "cancel" else set(rel.roots)
        if rel.kind == "cancel" and rel.contexts is not None:
            about.discard("_")
            # kept alive on purpose: nothing uses it after the defer (a server left running, a port
            # held), or it is stored beyond the iteration (appended, put in a map, sent)
            # or handed to a goroutine: cancelling it at the end of the iteration would abort that work
            derived = _derived(culprit, about, True)
            if not about or not _used_after(culprit, _derived(culprit, about, False), defer) \
                    or _stored(culprit, derived, defer) or _in_goroutine(culprit, derived):
                return None
        elif rel.kind != "cancel" and about:
            if not _used_after(culprit, _derived(culprit, about, False), defer) \
                    or _stored(culprit, about, defer, settings["accessors"]):
                return None
            # handed to goroutines started in the loop: they need it beyond the iteration. That is
            # deliberate when the function waits for them after the loop (fan-out and join), or when
            # the loop is a bounded setup (a range or a counted loop: N peers running for the rest of
            # the function); an endless accept loop (`for { c := accept(); defer c.Close(); go
            # serve(c) }`) is still reported
            if _in_goroutine(culprit, _derived(culprit, about, True)) \
                    and (_waits_after(func, culprit) or _bounded_header(culprit)):
                return None
    messages = settings["messages"]
    name = scope.name
    call_text = _short(text(rel.call))
    deferred = next((c for c in defer.named_children if c.type == "call_expression"), None)
    if deferred is not None and rel.call.id != deferred.id:  # inside a deferred func literal
        call_text = f"func() {{ ... {call_text} ... }}()"
    kind = rel.kind if rel.kind in messages else "close"
    if rel.kind == "cancel" and rel.timer and "cancel-timer" in messages:
        kind = "cancel-timer"
    elif rel.kind == "cancel" and rel.timer is None and "cancel-other" in messages:
        kind = "cancel-other"
    if acquire and f"{rel.kind}-deadlock" in messages:
        kind = f"{rel.kind}-deadlock"
    template = messages.get(kind) or "`defer {call}` in a loop: it runs only when {func} returns"
    recv = text(rel.recv) if rel.recv is not None else (rel.roots[0] if rel.roots else "the resource")
    msg = template.format(call=call_text, recv=_short(recv, 40), func=name, acquire=_short(acquire or "", 40))
    never = not loops.exits(ctx, culprit, scope)
    # the level: what piles up, and how far it can grow
    total = 1  # every loop that goes round after the defer multiplies what piles up
    for lp in all_iterating() if not acquire else ():
        count = loops.fixed_iterations(lp, resolve)
        if count is None:
            total = None
            break
        total *= count
    level = None
    if total is not None and not acquire:
        # a constant number of resources: it cannot grow with the input or the traffic
        level = settings["constant_level"]
        msg += messages.get("constant", "").format(count=total)
    elif rel.kind == "cancel" and not never and all(loops.finite(lp, resolve) for lp in all_iterating()):
        # contexts hold memory (and a timer), not descriptors or locks: in loops over a collection
        # that exists before them, they are bounded by its size and freed when the function returns
        level = settings["memory_level"]
    msg += messages.get("never-ends" if never else "fix", "")
    if facts.is_test_code(gofile):
        level = _lower(level, settings["test_level"])
    return ctx.finding(gofile.source, defer, msg, level=level, function=name,
                       related=[(gofile.source, culprit.children[0], "the loop")])


_RANK = {"note": 0, "warning": 1, "error": 2}


def _lower(a, b):
    """The lower of two levels (None: the rule's default, warning)."""
    a, b = a or "warning", b or "warning"
    return a if _RANK.get(a, 1) <= _RANK.get(b, 1) else b
