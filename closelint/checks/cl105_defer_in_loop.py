"""CL105 defer-in-loop: a release deferred inside a for body runs only when the function returns.

The module also holds the loop control-flow helpers CL106 uses (`iterates_after`, `loop_can_end`,
`loop_exits`, `can_return`): whether a path from a statement can start another iteration of a loop.
All of it is syntactic and iterative (no recursion on the tree's depth).
"""

from __future__ import annotations

import re
import weakref
from functools import lru_cache

from closelint import parsing
from closelint.golang import facts
from closelint.rulebook import load_rules
from closelint.treeutil import text, walk

TOKENS = (b"defer",)

_FUNCS = facts.FUNC_NODES
_CASES = ("expression_case", "default_case", "type_case", "communication_case")
_SWITCHES = ("expression_switch_statement", "type_switch_statement", "select_statement")
_BREAKABLE = ("for_statement", *_SWITCHES)


def _NO_FUNCS(n) -> bool:  # prune for walk: stay out of nested function literals
    return n.type in _FUNCS


# Defers, and the nodes that can hold one: a defer is in a loop of its own function when the innermost
# of these around it is a for statement (decided on byte ranges, before any package index is built).
_DEFERS = """
(defer_statement) @d
(for_statement) @scope
(func_literal) @scope
(function_declaration) @scope
(method_declaration) @scope
"""

# ------------------------------------------------------------------------- loop control flow
#
# An outcome is (falls, conts, breaks): the statement can complete normally; it can start the next
# iteration of the loop under study (a `continue` of it); the ids of statements inside the loop that
# a `break` on some path completes (a switch, an inner loop). Returns, gotos, breaks or continues of
# the loop or of anything outside it, and terminators (panic, os.Exit, log.Fatal, t.Fatal) leave.

class Parents:
    """Parent lookups for one file. tree-sitter's Node.parent walks down from the root on every call,
    so climbing from a node deep in the tree is quadratic; this maps every node of a top-level
    declaration to its parent in one walk, on the first lookup inside that declaration."""

    def __init__(self, root):
        self.root = root
        self.map: dict[int, object] = {}

    def __call__(self, node):
        if node.id == self.root.id:
            return None
        found = self.map.get(node.id)
        if found is not None:
            return found
        top = self.root.child_with_descendant(node)
        if top is None:
            return None
        if top.id == node.id:
            return self.root
        self.map[top.id] = self.root
        stack = [top]
        while stack:
            n = stack.pop()
            for c in n.children:
                self.map[c.id] = n
                stack.append(c)
        return self.map.get(node.id)


_PARENTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def parents(gofile) -> Parents:
    """The parent lookup of gofile's tree (one per source file, made on first use)."""
    src = gofile.source
    p = _PARENTS.get(src)
    if p is None or p.root.id != src.root.id:
        p = _PARENTS[src] = Parents(src.root)
    return p


def ancestors(gofile, node):
    up = parents(gofile)
    n = up(node)
    while n is not None:
        yield n
        n = up(n)


_FALLS = (True, False, frozenset())
_LEAVES = (False, False, frozenset())


def statements(node) -> list:
    """The statements of a block, statement_list or case clause (comments left out)."""
    if node is None:
        return []
    if node.type != "statement_list":
        node = next((c for c in node.named_children if c.type == "statement_list"), None)
        if node is None:
            return []
    return [c for c in node.named_children if c.type != "comment"]


def _inside(node, outer) -> bool:
    return outer.start_byte <= node.start_byte and node.end_byte <= outer.end_byte and node.id != outer.id


def jump_target(gofile, stmt):
    """The statement a break or continue targets; None across a function boundary or unresolved."""
    label = next((c for c in stmt.named_children if c.type == "label_name"), None)
    wanted = ("for_statement",) if stmt.type == "continue_statement" else _BREAKABLE
    for n in ancestors(gofile, stmt):
        if n.type in _FUNCS:
            return None
        if label is None:
            if n.type in wanted:
                return n
        elif n.type == "labeled_statement":
            name = next((c for c in n.named_children if c.type == "label_name"), None)
            if name is not None and text(name) == text(label):
                return next((c for c in n.named_children if c.type != "label_name" and c.type != "comment"), None)
    return None


def _kids(node) -> list:
    t = node.type
    if t in ("block", "statement_list") or t in _CASES:
        return statements(node)
    if t == "if_statement":
        out = [node.child_by_field_name("consequence")]
        alt = node.child_by_field_name("alternative")
        if alt is not None:
            out.append(alt)
        return [k for k in out if k is not None]
    if t in _SWITCHES:
        return [c for c in node.named_children if c.type in _CASES]
    if t == "labeled_statement":
        return [c for c in node.named_children if c.type not in ("label_name", "comment")]
    if t == "for_statement":
        body = node.child_by_field_name("body")
        return [body] if body is not None else []
    return []


def _seq(values) -> tuple:
    falls, conts, breaks = True, False, frozenset()
    for f, c, b in values:
        if not falls:
            break
        conts = conts or c
        breaks = breaks | b
        falls = f
    return falls, conts, breaks


def _combine(node, values, loop, gofile, ctx) -> tuple:
    t = node.type
    if t in ("block", "statement_list") or t in _CASES:
        return _seq(values)
    if t == "if_statement":
        cons = values[0] if values else _FALLS
        alt = values[1] if len(values) > 1 else _FALLS
        return cons[0] or alt[0], cons[1] or alt[1], cons[2] | alt[2]
    if t in _SWITCHES:
        falls = any(v[0] for v in values)
        conts = any(v[1] for v in values)
        breaks = frozenset().union(*(v[2] for v in values))
        if t != "select_statement" and not any(c.type == "default_case" for c in node.named_children):
            falls = True
        if node.id in breaks:
            falls, breaks = True, breaks - {node.id}
        return falls, conts, breaks
    if t == "labeled_statement":
        return values[0] if values else _FALLS
    if t == "for_statement":
        body = values[0] if values else _FALLS
        falls = loop_can_end(node, gofile) or node.id in body[2]
        return falls, body[1], body[2] - {node.id}
    if t in ("return_statement", "goto_statement", "fallthrough_statement"):
        return _LEAVES  # fallthrough: the next case clause's own outcome is counted by the switch
    if t == "break_statement":
        target = jump_target(gofile, node)
        if target is None or (loop is not None and (target.id == loop.id or not _inside(target, loop))):
            return _LEAVES
        return False, False, frozenset((target.id,))
    if t == "continue_statement":
        target = jump_target(gofile, node)
        # a continue of an inner loop goes on inside it (that loop's own outcome covers it)
        return False, loop is not None and target is not None and target.id == loop.id, frozenset()
    if t == "expression_statement":
        expr = node.named_children[0] if node.named_children else None
        if expr is not None and facts.is_terminator(gofile, expr):
            return _LEAVES
        return _FALLS
    return _FALLS


def flow(node, loop, gofile, ctx=None) -> tuple:
    """The outcome of one statement (or block) relative to loop (None: relative to the function)."""
    memo: dict[int, tuple] = {}
    stack = [(node, False)]
    while stack:
        n, expanded = stack.pop()
        if n.id in memo:
            continue
        kids = _kids(n)
        if kids and not expanded:
            stack.append((n, True))
            stack.extend((k, False) for k in kids if k.id not in memo)
            continue
        memo[n.id] = _combine(n, [memo[k.id] for k in kids], loop, gofile, ctx)
    return memo[node.id]


def flow_seq(stmts, loop, gofile) -> tuple:
    return _seq(flow(s, loop, gofile) for s in stmts)


def _is_time_tick(gofile, expr) -> bool:
    return expr is not None and expr.type == "call_expression" and facts.call_name(gofile, expr) == ("time", "Tick")


def loop_can_end(loop, gofile) -> bool:
    """The loop's own header can end it: a condition, or a range (not over time.Tick's channel,
    which is never closed). `for {}` and `for ;; {}` cannot."""
    for c in loop.named_children:
        if c.type in ("block", "comment"):
            continue
        if c.type == "range_clause":
            return not _is_time_tick(gofile, c.child_by_field_name("right"))
        if c.type == "for_clause":
            return c.child_by_field_name("condition") is not None
        return True  # `for cond {`
    return False


def iterates_after(node, loop, gofile) -> bool:
    """Can a path that has executed node (a statement inside loop's body) start another iteration of
    loop? False when every such path returns, leaves the loop, panics or exits."""
    alive, pending = True, set()
    up = parents(gofile)
    cur = node
    while True:
        parent = up(cur)
        if parent is None or parent.type in _FUNCS:
            return False
        if parent.id == loop.id:
            return alive  # the end of the body: the next iteration
        if parent.type == "statement_list":
            if alive:
                after = [s for s in statements(parent) if s.start_byte >= cur.end_byte]
                falls, conts, breaks = flow_seq(after, loop, gofile)
                if conts:
                    return True
                alive = falls
                pending |= breaks
        elif parent.type == "for_statement":  # an inner loop around node: it iterates, then may end
            falls, conts, breaks = flow(parent, loop, gofile)
            if conts:
                return True
            alive = falls
            pending.discard(parent.id)
            pending |= breaks
        elif parent.type in _SWITCHES and parent.id in pending:
            alive = True
            pending.discard(parent.id)
        if not alive and not pending:
            return False
        cur = parent


def loop_exits(loop, gofile) -> bool:
    """Is there any way out of the loop: its header, a return, a goto, a break or continue of it or of
    something outside it? (Terminators do not count: deferred calls do not run after os.Exit.)"""
    if loop_can_end(loop, gofile):
        return True
    for n in walk(loop, prune=_NO_FUNCS):
        if n.type in _FUNCS and n.id != loop.id:
            continue
        if n.type in ("return_statement", "goto_statement"):
            return True
        if n.type in ("break_statement", "continue_statement"):
            target = jump_target(gofile, n)
            if target is None:
                continue
            if n.type == "break_statement" and target.id == loop.id:
                return True
            if target.id != loop.id and not _inside(target, loop):
                return True
    return False


def can_return(func_node, gofile) -> bool:
    """Can the function (declaration or literal) return: a return statement outside nested literals,
    or a body that can complete normally."""
    body = func_node.child_by_field_name("body")
    if body is None:
        return False
    for n in walk(body, prune=_NO_FUNCS):
        if n.type == "return_statement":
            return True
    return flow(body, None, gofile)[0]


def fixed_iterations(loop) -> int | None:
    """The iteration count of a loop over a literal set or to a literal bound, when the syntax shows it."""
    for c in loop.named_children:
        if c.type == "range_clause":
            right = c.child_by_field_name("right")
            if right is None:
                return None
            if right.type == "int_literal":
                return _int(right)
            if right.type == "composite_literal":
                body = right.child_by_field_name("body")
                if body is None:
                    return None
                return sum(1 for e in body.named_children if e.type in ("literal_element", "keyed_element"))
            return None
        if c.type == "for_clause":
            cond = c.child_by_field_name("condition")
            init = c.child_by_field_name("initializer")
            if cond is None or cond.type != "binary_expression" or init is None:
                return None
            op = text(cond.child_by_field_name("operator"))
            left, right = cond.child_by_field_name("left"), cond.child_by_field_name("right")
            if op not in ("<", "<=") or left is None or right is None or right.type != "int_literal":
                return None
            if init.type != "short_var_declaration":
                return None
            lhs = init.child_by_field_name("left")
            rhs = init.child_by_field_name("right")
            if lhs is None or rhs is None or len(lhs.named_children) != 1 or len(rhs.named_children) != 1:
                return None
            start = rhs.named_children[0]
            if text(lhs.named_children[0]) != text(left) or start.type != "int_literal":
                return None
            lo, hi = _int(start), _int(right)
            if lo is None or hi is None:
                return None
            return max(0, hi - lo + (1 if op == "<=" else 0))
        if c.type not in ("block", "comment"):
            return None
    return None


def _int(node) -> int | None:
    try:
        return int(text(node).replace("_", ""), 0)
    except ValueError:
        return None


def loop_variables(loop) -> set[str]:
    """Names a loop header declares: range keys and values, a for clause's initialized variables."""
    names = set()
    for c in loop.named_children:
        if c.type == "range_clause":
            left = c.child_by_field_name("left")
            if left is not None:
                names |= {text(i) for i in left.named_children if i.type == "identifier"}
        elif c.type == "for_clause":
            init = c.child_by_field_name("initializer")
            if init is not None and init.type == "short_var_declaration":
                left = init.child_by_field_name("left")
                if left is not None:
                    names |= {text(i) for i in left.named_children if i.type == "identifier"}
    names.discard("_")
    return names


# ------------------------------------------------------------------------------------ the rule

class _Release:
    __slots__ = ("kind", "call", "recv", "roots", "method", "acquire", "has_call", "contexts")

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


@lru_cache(maxsize=8)
def _cl101_release_lists() -> tuple:
    """The `release` lists of CL101's catalog rows, as tuples of method names (read tolerantly: the
    shape may gain keys; a string or a list of strings; dotted entries are left out)."""
    rule = load_rules().get("CL101")
    out = []
    if rule is None:
        return ()
    for table in rule.catalogs.values():
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
                    out.append(names)
    return tuple(out)


@lru_cache(maxsize=8)
def _cl101_releasers() -> tuple:
    """(import path, function, argument index) rows of CL101's `releasers` table: package functions
    that release one of their arguments (`pgx.CollectRows(rows, ...)` closes rows). Read tolerantly."""
    rule = load_rules().get("CL101")
    out = []
    for row in (rule.catalogs.get("releasers", []) if rule is not None else []):
        if not isinstance(row, dict) or not isinstance(row.get("package"), str):
            continue
        funcs = row.get("functions", row.get("function", []))
        funcs = [funcs] if isinstance(funcs, str) else funcs
        arg = row.get("argument", 0)
        if not isinstance(funcs, list) or not isinstance(arg, int):
            continue
        out += [(row["package"], f, arg) for f in funcs if isinstance(f, str)]
    return tuple(out)


def _tables(ctx):
    methods = {}
    for row in ctx.catalogs.get("releases", []):
        if isinstance(row, dict) and isinstance(row.get("method"), str):
            methods[row["method"]] = row
    if ctx.options.get("use-cl101-catalog", True):
        for names in _cl101_release_lists():
            for name in names:
                methods.setdefault(name, {"method": name, "kind": "close"})
    constructors = {(r.get("package"), r.get("function")) for r in ctx.catalogs.get("cancel-constructors", [])
                    if isinstance(r, dict)}
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
        is_cancel, contexts = _cancel_of(ctx, gofile, scope, name, constructors, cancel_re)
        if is_cancel:
            return _Release("cancel", call, None, [name], contexts=contexts)
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


def _cancel_of(ctx, gofile, scope, name, constructors, cancel_re) -> tuple[bool, list | None]:
    """Is `name` a cancel function; and the contexts bound with it (`ctx, cancel := ...`)."""
    if scope is not None:
        s = scope
        while s is not None:
            body = s.body
            contexts = _bound_by_constructor(gofile, body, name, constructors) if body is not None else []
            if contexts:
                return True, contexts
            s = s.parent
        t = facts.local_types(ctx, scope).get(name, "")
        if t in ("context.CancelFunc", "context.CancelCauseFunc"):
            return True, None
    return bool(cancel_re is not None and cancel_re.search(name)), None


def _bound_by_constructor(gofile, body, name, constructors) -> list:
    """The first names of `ctx, name := context.WithX(...)` bindings of name in body."""
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
        if call.type == "call_expression" and facts.call_name(gofile, call) in constructors:
            out.append(text(names[0]))
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
                    if _on_error_only(gofile, n, body):
                        return None  # cleanup on failure: on success the resource is meant to live on
                    rel.roots = [r for name in rel.roots for r in params.get(name, [name])]
                    return rel
        return None
    return _release_in_call(ctx, gofile, call, methods, constructors, cancel_re, helper_re, scope)


_ERR_NAME = re.compile(r"(?i)err")


def _on_error_only(gofile, call, body) -> bool:
    """Is the release inside `if err != nil { ... }` (or `if retErr != nil`) within the deferred literal?"""
    for n in ancestors(gofile, call):
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


def _stored(gofile, loop, names: set[str], defer) -> bool:
    """Is one of names kept beyond the iteration inside loop: appended, put in a slice or map slot,
    sent on a channel? Wrapping calls (bufio.NewReader(f)) and composite literals carry the value."""
    body = loop.child_by_field_name("body")
    if body is None:
        return False
    up = parents(gofile)
    for ident in walk(body):
        if ident.type != "identifier" or text(ident) not in names or _inside(ident, defer):
            continue
        n = ident
        while True:
            p = up(n)
            if p is None:
                break
            if p.type == "parenthesized_expression" or p.type in ("literal_element", "literal_value",
                                                                      "composite_literal"):
                n = p
                continue
            if p.type == "keyed_element":
                if n.id == p.named_children[-1].id:
                    n = p
                    continue
                break
            if p.type == "unary_expression" and text(p.child_by_field_name("operator")) == "&":
                n = p
                continue
            if p.type == "argument_list":
                owner = up(p)
                callee = owner.child_by_field_name("function")
                if callee is not None and text(callee) == "append":
                    if p.named_children and p.named_children[0].id != n.id:
                        return True
                    break
                n = owner  # wrapped: bufio.NewReader(f)
                continue
            if p.type == "send_statement" and p.child_by_field_name("value") is not None \
                    and p.child_by_field_name("value").id == n.id:
                return True
            if p.type == "expression_list" and up(p) is not None and up(p).type == "assignment_statement":
                stmt = up(p)
                if stmt.child_by_field_name("right") is None or stmt.child_by_field_name("right").id != p.id:
                    break
                left = stmt.child_by_field_name("left")
                idx = [c.id for c in p.named_children].index(n.id)
                targets = left.named_children if left is not None else []
                target = targets[idx] if idx < len(targets) else None
                if target is None:
                    break
                # a slot of a collection keeps every iteration's value; a plain variable or field
                # keeps only the last one, so the others are not needed beyond their iteration
                if target.type == "index_expression":
                    return True
                break
            break
    return False


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
    if ctx.options.get("use-cl101-catalog", True):
        for names in _cl101_release_lists():
            if method in names:
                out |= set(names)
    return out


def _released_explicitly(ctx, gofile, loop, rel, defer, methods, helper_re) -> bool:
    """Is the same thing also released by a plain (not deferred) call in the loop body: the defer is
    then a safety net for early returns (`batch.Close(); batch = db.NewBatch(); defer batch.Close()`,
    `err = errors.Join(err, w.Close())`)."""
    body = loop.child_by_field_name("body")
    if body is None:
        return False
    recv = text(rel.recv) if rel.recv is not None else None
    same = _alternatives(ctx, methods, rel.method) if rel.method else set(methods)
    local_helpers = None
    for n in walk(body, prune=_NO_FUNCS):
        if n.type != "call_expression" or _inside(n, defer) or n.id == defer.id:
            continue
        if any(a.type == "defer_statement" for a in _ancestors_until(gofile, n, body)):
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
        if fn.type == "selector_expression" and ctx.options.get("use-cl101-catalog", True):
            path = gofile.import_path(text(fn.child_by_field_name("operand")))
            for rpkg, rfunc, rarg in _cl101_releasers():
                if path == rpkg and name == rfunc and rarg < len(args.named_children) \
                        and text(args.named_children[rarg]) == recv:
                    return True
        if fn.type == "identifier":
            local = ctx.package.functions.get(name)
            if local is not None and _closes_a_parameter(local, methods):
                return True
            if local_helpers is None:
                local_helpers = _closing_literals(gofile, loop, methods)
            if name in local_helpers:
                return True
    return False


def _ancestors_until(gofile, node, stop):
    for n in ancestors(gofile, node):
        if n.id == stop.id:
            return
        yield n


def _closing_literals(gofile, loop, methods) -> set[str]:
    """Local variables bound to function literals that release one of their parameters
    (`flush := func(b dbm.Batch) error { defer b.Close(); ... }`), in the function around loop."""
    func = next((a for a in ancestors(gofile, loop) if a.type in _FUNCS), None)
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


def _waits_after(gofile, loop) -> bool:
    """Does the function wait for something after the loop (`wg.Wait()`, `g.Wait()`)?"""
    func = next((a for a in ancestors(gofile, loop) if a.type in _FUNCS), None)
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
    tables = _tables(ctx)
    opts = ctx.options
    max_fixed = int(opts.get("max-fixed-iterations", 4))
    test_level = opts.get("test-level", "note")
    cancel_re = _compile(opts.get("cancel-name-pattern", ""))
    helper_re = _compile(opts.get("release-helper-pattern", ""))
    messages = ctx.catalogs.get("messages", {}) or {}
    for src in ctx.targets:
        if src.lang != "go" or b"defer" not in src.data:
            continue
        candidates = _defers_in_loops(src.root)
        if not candidates:
            continue
        gofile = ctx.package.file_of(src)
        if gofile is None:
            continue
        for defer in candidates:
            loops, func = _loops_around(gofile, defer)
            if not loops:
                continue
            scope = scope_of(ctx, func)
            rel = _release_of(ctx, gofile, defer, tables, scope, cancel_re, helper_re)
            if rel is None:
                continue
            finding = _judge(ctx, gofile, defer, rel, loops, scope, max_fixed, test_level, messages,
                             tables[0], helper_re)
            if finding is not None:
                yield finding


def _defers_in_loops(root) -> list:
    """The defer statements whose innermost enclosing for statement or function is a for statement."""
    caps = parsing.captures("go", _DEFERS, root)
    defers = caps.get("d", [])
    if not defers:
        return []
    scopes = sorted(caps.get("scope", []), key=lambda n: (n.start_byte, -n.end_byte))
    out = []
    # a sweep in document order with a stack of the open scopes (nested ranges)
    events = sorted([(n.start_byte, 1, i, n) for i, n in enumerate(scopes)] +
                    [(d.start_byte, 2, i, d) for i, d in enumerate(defers)], key=lambda e: (e[0], e[1], e[2]))
    stack: list = []
    for start, kind, _, node in events:
        while stack and stack[-1].end_byte <= start:
            stack.pop()
        if kind == 1:
            stack.append(node)
        elif stack and stack[-1].type == "for_statement":
            out.append(node)
    return out


def scope_of(ctx, func_node):
    """The facts.Scope of a function node (without facts.enclosing's climb through Node.parent)."""
    if func_node is None:
        return None
    facts.scopes(ctx)
    return ctx.shared["go.scopes"]["by_id"].get(func_node.id)


def _compile(pattern):
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _loops_around(gofile, node) -> tuple[list, object]:
    """The for statements around node up to its function (innermost first), and that function."""
    out = []
    for n in ancestors(gofile, node):
        if n.type in _FUNCS:
            return out, n
        if n.type == "for_statement":
            out.append(n)
    return out, None


def _judge(ctx, gofile, defer, rel, loops, scope, max_fixed, test_level, messages, methods, helper_re):
    # the element of a pre-existing collection (`for _, c := range conns { defer c.Close() }`)
    if not rel.has_call and any(r in loop_variables(lp) for lp in loops for r in rel.roots):
        return None
    acquire = None
    culprit = None
    for loop in loops:  # innermost first
        if not iterates_after(defer, loop, gofile):
            continue
        acquire = _acquired_in(loop, rel)
        count = fixed_iterations(loop)
        if count is not None and (count <= 1 or (count <= max_fixed and acquire is None)):
            continue
        culprit = loop
        break
    if culprit is None:
        return None
    if _released_explicitly(ctx, gofile, culprit, rel, defer, methods, helper_re):
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
                    or _stored(gofile, culprit, derived, defer) or _in_goroutine(culprit, derived):
                return None
        elif rel.kind != "cancel" and about:
            if not _used_after(culprit, _derived(culprit, about, False), defer) or _stored(gofile, culprit, about, defer):
                return None
            # handed to goroutines started in the loop: they need it beyond the iteration. That is
            # deliberate when the function waits for them after the loop (fan-out and join), or when
            # the loop is a bounded setup (a range or a counted loop: N peers running for the rest of
            # the function); an endless accept loop (`for { c := accept(); defer c.Close(); go
            # serve(c) }`) is still reported
            if _in_goroutine(culprit, _derived(culprit, about, True)) \
                    and (_waits_after(gofile, culprit) or _bounded_header(culprit)):
                return None
    func = scope.name if scope is not None else "the function"
    call_text = _short(text(rel.call))
    deferred = next((c for c in defer.named_children if c.type == "call_expression"), None)
    if deferred is not None and rel.call.id != deferred.id:  # inside a deferred func literal
        call_text = f"func() {{ ... {call_text} ... }}()"
    kind = rel.kind if rel.kind in messages else "close"
    if acquire and f"{kind}-deadlock" in messages:
        kind = f"{kind}-deadlock"
    template = messages.get(kind) or "`defer {call}` in a loop: it runs only when {func} returns"
    recv = text(rel.recv) if rel.recv is not None else (rel.roots[0] if rel.roots else "the resource")
    msg = template.format(call=call_text, recv=_short(recv, 40), func=func, acquire=_short(acquire or "", 40))
    never = not any(loop_exits(lp, gofile) for lp in [culprit])
    msg += messages.get("never-ends" if never else "fix", "")
    level = test_level if gofile.path.name.endswith("_test.go") else None
    return ctx.finding(gofile.source, defer, msg, level=level, function=func,
                       related=[(gofile.source, culprit.children[0], "the loop")])
