"""Loops of Go code: where they are, whether they go round again, whether they can end, how often
they run. Shared by the rules about loops (CL105 defer-in-loop, CL106 timer-leak-in-loop, CL103's
loops with no way out).

    from closelint.golang import loops

    path = loops.path_to(node, root)                # root ... node, found walking down
    fors, func = loops.loops_around(node, root)     # for statements around node (innermost first)
    loops.body_loops(node, root)                    # ... whose body holds node (not their header)
    loops.iterates_after(ctx, node, loop)           # can a path that ran node start another iteration?
    loops.exits(ctx, loop)                          # the statements through which control leaves loop
    loops.can_return(ctx, func_node)                # can the function (or literal) return at all?
    loops.fixed_iterations(loop, loops.constants(ctx, scope))  # 3 for `for range 3`, `n := 3; i < n`
    loops.loop_variables(loop)                      # names the header declares

Control flow is read from the function's statement-level CFG (closelint.golang.flow.cfg, built once
per function and shared with every rule of the unit): breaks, labeled continues, gotos, switches,
selects, terminators (panic, os.Exit, log.Fatal*, t.Fatal*, klog.Fatalf...) are resolved there, once.
A loop's own statements are those inside its byte range; "another iteration" means reaching the
loop's head (its condition, range or `for {`) again without leaving that range.

Ancestor chains are found walking down from the root with `child_with_descendant` (O(depth) C
calls): py-tree-sitter's Node.parent walks down from the root on every call, so climbing is
quadratic. Nothing here recurses on the tree's depth.
"""

from __future__ import annotations

from closelint.golang import facts, flow
from closelint.treeutil import path_to, text

FUNCS = facts.FUNC_NODES
LOOP = "for_statement"


# ------------------------------------------------------------------------------------ where


def ancestors_of(node, root) -> list:
    """node's ancestors, innermost first, up to root."""
    path = path_to(node, root)
    return path[-2::-1] if path else []


def loops_around(node, root, anc=None) -> tuple[list, object]:
    """The for statements around node up to its function (innermost first), and that function (None
    at package level). A loop whose header holds node counts: use body_loops for bodies only.
    anc: node's ancestors (ancestors_of), when already known; root is then not needed."""
    out = []
    for n in anc if anc is not None else ancestors_of(node, root):
        if n.type in FUNCS:
            return out, n
        if n.type == LOOP:
            out.append(n)
    return out, None


def body_loops(node, root, anc=None) -> list:
    """The for statements whose body holds node (innermost first), up to the enclosing function: a
    header (`for range time.Tick(d)`, `for i := f(); ...`) is evaluated once, not per iteration."""
    out = []
    child = node
    for n in anc if anc is not None else ancestors_of(node, root):
        if n.type in FUNCS:
            break
        if n.type == LOOP:
            body = n.child_by_field_name("body")
            if body is not None and body.id == child.id:
                out.append(n)
        child = n
    return out


def enclosing_function(node, root, anc=None):
    """The innermost function declaration or literal around node, node itself excluded (None at
    package level)."""
    if anc is None:
        return facts.innermost_function(path_to(node, root), 1)
    return next((n for n in anc if n.type in FUNCS), None)


def statement_of(node, root, anc=None):
    """The statement of a statement list that holds node (None inside a header or a declaration)."""
    child = node
    for n in anc if anc is not None else ancestors_of(node, root):
        if n.type == "statement_list":
            return child
        if n.type in FUNCS or n.type == "block":
            return None
        child = n
    return None


def inside(node, outer) -> bool:
    """node lies within outer's bytes (and is not outer)."""
    return outer.start_byte <= node.start_byte and node.end_byte <= outer.end_byte and node.id != outer.id


# --------------------------------------------------------------------------------- control flow

def _scope(ctx, node, scope):
    return scope if scope is not None else facts.scope_at(ctx, node)


def _head(g: flow.CFG, loop):
    """The CFG node a new iteration of loop passes: its condition, range clause or `for {` head."""
    body = loop.child_by_field_name("body")
    clause = next((c for c in loop.named_children if c.type != "comment" and (body is None or c.id != body.id)), None)
    if clause is not None and clause.type == "for_clause":
        cond = clause.child_by_field_name("condition")
        key = cond if cond is not None else loop
    elif clause is not None:
        key = clause  # a range clause, or the condition of `for cond {`
    else:
        key = loop
    return g.node_of.get(key.id)


def _within(node: flow.Node, loop) -> bool:
    ast = node.ast
    return ast is not None and loop.start_byte <= ast.start_byte and ast.end_byte <= loop.end_byte


def _successors(gofile, node: flow.Node, loop, ctx=None, scope=None):
    """node's successors. (A range over a channel nobody closes has no way out in flow's CFG already.)"""
    return [s for s, _ in node.succs]


def iterates_after(ctx, node, loop, scope=None) -> bool:
    """Can a path that has executed node (a statement, or a case clause, inside loop's body) start
    another iteration of loop? False when every such path returns, leaves the loop (break, goto, a
    continue of an outer loop), panics or exits. scope: the function around loop, when known."""
    scope = _scope(ctx, loop, scope)
    if scope is None:
        return False
    g = flow.cfg(ctx, scope)
    start = g.node_for(node)
    head = _head(g, loop)
    if start is None or head is None:
        return False
    gofile = scope.file
    seen = {start.index}
    stack = _successors(gofile, start, loop, ctx, scope)
    while stack:
        n = stack.pop()
        if n.index in seen:
            continue
        seen.add(n.index)
        if n is head:
            return True
        if not _within(n, loop):
            continue
        stack.extend(_successors(gofile, n, loop, ctx, scope))
    return False


def exits(ctx, loop, scope=None) -> list:
    """The statements (AST nodes) through which control leaves loop: its header (a condition, a
    range), a return, a goto, a break of it or of something outside it, a continue of an outer loop.
    [] for a loop with no way out (`for { ... }` whose paths all go round, panic or exit: deferred
    calls never run, a goroutine running it never ends). Terminators are not exits."""
    scope = _scope(ctx, loop, scope)
    if scope is None:
        return []
    g = flow.cfg(ctx, scope)
    gofile = scope.file
    out = []
    for n in g.nodes:
        if n.ast is None or not _within(n, loop):
            continue
        if any(not _within(s, loop) for s in _successors(gofile, n, loop, ctx, scope)):
            out.append(n.ast)
    return out


def can_return(ctx, func_node) -> bool:
    """Can the function (declaration or literal) return: is its exit reachable from its entry?"""
    scope = facts.scope_at(ctx, func_node)
    if scope is None or scope.body is None:
        return False
    g = flow.cfg(ctx, scope)
    seen, stack = set(), [g.entry]
    while stack:
        n = stack.pop()
        if n.index in seen:
            continue
        seen.add(n.index)
        if n is g.exit:
            return True
        stack.extend(_successors(scope.file, n, None, ctx, scope))
    return False


# One definition for the CFG and for the questions asked here: flow's.
endless_range = flow.endless_range


def loop_can_end(gofile, loop) -> bool:
    """The loop's own header can end it: a condition, or a range (not over a channel nobody closes).
    `for {}` and `for ;; {}` cannot."""
    for c in loop.named_children:
        if c.type in ("block", "comment"):
            continue
        if c.type == "range_clause":
            return not endless_range(gofile, c)
        if c.type == "for_clause":
            return c.child_by_field_name("condition") is not None
        return True  # `for cond {`
    return False


# ------------------------------------------------------------------------------ how many times

class Constants:
    """Resolves identifiers to the expression they stand for when it never changes: a local assigned
    exactly once, by its declaration (`tests := []T{...}`, `n := 3`, `const n = 3`), never reassigned,
    incremented or taken the address of; a package constant; a package variable initialized with a
    literal that no statement of the package assigns, increments or takes the address of
    (`var freezers = []string{...}`)."""

    def __init__(self, ctx=None, scope=None):
        self.ctx = ctx
        self.scope = scope
        self._bindings = None

    def __call__(self, ident):
        if ident is None or ident.type != "identifier" or self.ctx is None:
            return None
        if self.scope is not None:
            if self._bindings is None:
                self._bindings = flow.bindings(self.ctx, self.scope)
            b = self._bindings.resolve(ident)
            if b is not None:
                return _unchanging(b)
        name = text(ident)
        pkg = self.ctx.package
        found = pkg.consts.get(name)
        if found is None:
            found = pkg.globals.get(name)
            if found is None:
                return None
            value = _spec_value(found[1], name)
            if value is None or value.type != "composite_literal" or name in _assigned_globals(self.ctx):
                return None
            return value
        return _spec_value(found[1], name)


def _spec_value(spec, name):
    names = spec.children_by_field_name("name")
    value = spec.child_by_field_name("value")
    if value is None or len(value.named_children) != len(names):
        return None  # iota lists: not followed
    for n, v in zip(names, value.named_children):
        if text(n) == name:
            return v
    return None


_ASSIGNED = """
(assignment_statement left: (expression_list (identifier) @n))
(inc_statement (identifier) @n)
(dec_statement (identifier) @n)
(unary_expression operator: "&" operand: (identifier) @n)
"""


def _assigned_globals(ctx) -> set[str]:
    """Names that some statement of the package assigns, increments or takes the address of (a local
    of the same name counts too: the answer errs towards "may change"). Once per unit."""
    names = ctx.shared.get("go.loops.assigned")
    if names is None:
        from closelint import parsing

        names = set()
        for gf in ctx.package.files:
            for n in parsing.captures("go", _ASSIGNED, gf.source.root).get("n", []):
                names.add(text(n))
        ctx.shared["go.loops.assigned"] = names
    return names


def constants(ctx, scope) -> Constants:
    """The resolver fixed_iterations uses to follow locals and constants of scope's function."""
    return Constants(ctx, scope)


def _unchanging(b: flow.Binding):
    if b.kind not in ("short", "var", "const") or b.value is None or b.call_index >= 0 or b.defs:
        return None
    for use in b.uses:
        p = use.parent
        if p is None:
            continue
        if p.type in ("inc_statement", "dec_statement"):
            return None
        if p.type == "unary_expression" and text(p.child_by_field_name("operator")) == "&":
            return None  # may be written through the pointer
        if p.type == "index_expression" and _assigned_slot(p):
            return None  # `m[k] = v` grows a map
    return b.value


def _assigned_slot(index) -> bool:
    """Is the index expression a target of an assignment (`m[k] = v`, `m[k], ok = ...`)?"""
    lst = index.parent
    stmt = lst.parent if lst is not None and lst.type == "expression_list" else None
    if stmt is None or stmt.type != "assignment_statement":
        return False
    left = stmt.child_by_field_name("left")
    return left is not None and left.id == lst.id


_MAX_DEPTH = 6


def fixed_iterations(loop, resolve=None) -> int | None:
    """The iteration count of a loop when the syntax shows it: a range over a literal (`range
    []string{"a", "b"}`, `range 3`) or to a literal bound (`for i := 0; i < 3; i++`), or, with resolve
    (constants()), through locals and constants (`tests := []T{...}; range tests`, `i < n`,
    `i < len(tests)`, `measurements+2`). None when unknown."""
    for c in loop.named_children:
        if c.type == "range_clause":
            right = c.child_by_field_name("right")
            return _size(right, resolve, 0) if right is not None else None
        if c.type == "for_clause":
            return _counted(c, resolve)
        if c.type not in ("block", "comment"):
            return None
    return None


def _size(expr, resolve, depth) -> int | None:
    """The number of iterations of `range expr`."""
    if expr is None or depth > _MAX_DEPTH:
        return None
    if expr.type == "parenthesized_expression" and expr.named_children:
        return _size(expr.named_children[0], resolve, depth + 1)
    if expr.type == "composite_literal":
        return _elements(expr)
    if expr.type == "identifier" and resolve is not None:
        value = resolve(expr)
        if value is not None and value.type == "composite_literal":
            return _elements(value)
    return _int_value(expr, resolve, depth)  # `range 3`, `range n`


def _elements(lit) -> int | None:
    body = lit.child_by_field_name("body")
    if body is None:
        return None
    return sum(1 for e in body.named_children if e.type in ("literal_element", "keyed_element"))


def _int_value(expr, resolve, depth) -> int | None:
    """An integer constant the syntax shows: literals, + - * of them, constants and unchanging
    locals (through resolve), `len(x)` of a literal."""
    if expr is None or depth > _MAX_DEPTH:
        return None
    t = expr.type
    if t == "int_literal":
        try:
            return int(text(expr).replace("_", ""), 0)
        except ValueError:
            return None
    if t == "parenthesized_expression" and expr.named_children:
        return _int_value(expr.named_children[0], resolve, depth + 1)
    if t == "identifier":
        value = resolve(expr) if resolve is not None else None
        return _int_value(value, resolve, depth + 1) if value is not None else None
    if t == "binary_expression":
        op = text(expr.child_by_field_name("operator"))
        if op not in ("+", "-", "*"):
            return None
        a = _int_value(expr.child_by_field_name("left"), resolve, depth + 1)
        b = _int_value(expr.child_by_field_name("right"), resolve, depth + 1)
        if a is None or b is None:
            return None
        return a + b if op == "+" else a - b if op == "-" else a * b
    if t == "call_expression":
        fn = expr.child_by_field_name("function")
        args = expr.child_by_field_name("arguments")
        if fn is not None and text(fn) == "len" and args is not None and len(args.named_children) == 1:
            return _size(args.named_children[0], resolve, depth + 1) if args.named_children[0].type in (
                "identifier", "composite_literal", "parenthesized_expression") else None
    return None


def _counted(clause, resolve) -> int | None:
    """`for i := A; i < B; i++` (or <=), `for i := A; i > B; i--` (or >=)."""
    cond = clause.child_by_field_name("condition")
    init = clause.child_by_field_name("initializer")
    update = clause.child_by_field_name("update")
    if cond is None or cond.type != "binary_expression" or init is None or init.type != "short_var_declaration":
        return None
    lhs, rhs = init.child_by_field_name("left"), init.child_by_field_name("right")
    if lhs is None or rhs is None or len(lhs.named_children) != 1 or len(rhs.named_children) != 1:
        return None
    var = text(lhs.named_children[0])
    op = text(cond.child_by_field_name("operator"))
    left, right = cond.child_by_field_name("left"), cond.child_by_field_name("right")
    if left is None or right is None or text(left) != var:
        return None
    up = op in ("<", "<=")
    if not up and op not in (">", ">="):
        return None
    if update is not None:
        step = update.type == "inc_statement" if up else update.type == "dec_statement"
        if not step or not update.named_children or text(update.named_children[0]) != var:
            return None
    elif not up:
        return None
    start = _int_value(rhs.named_children[0], resolve, 0)
    bound = _int_value(right, resolve, 0)
    if start is None or bound is None:
        return None
    inclusive = 1 if op in ("<=", ">=") else 0
    return max(0, (bound - start if up else start - bound) + inclusive)


def finite(loop, resolve=None) -> bool:
    """Is the number of iterations bounded by something that exists before the loop: a known count,
    a counted loop (`for i := a; i < b; i++` on one variable), or a range with a key and a value over
    a variable or a literal (a slice, array, map or string: a channel gives one value, and a call may
    be an endless iterator function)? `for {}`, `for cond {}` and one-value ranges are not."""
    if fixed_iterations(loop, resolve) is not None:
        return True
    for c in loop.named_children:
        if c.type == "range_clause":
            left, right = c.child_by_field_name("left"), c.child_by_field_name("right")
            return left is not None and len(left.named_children) == 2 and right is not None and right.type in (
                "identifier", "selector_expression", "index_expression", "composite_literal")
        if c.type == "for_clause":
            init, cond, update = (c.child_by_field_name(f) for f in ("initializer", "condition", "update"))
            if init is None or cond is None or update is None or init.type != "short_var_declaration":
                return False
            left = init.child_by_field_name("left")
            var = text(left.named_children[0]) if left is not None and len(left.named_children) == 1 else None
            return var is not None and cond.type == "binary_expression" \
                and text(cond.child_by_field_name("left")) == var \
                and update.type in ("inc_statement", "dec_statement") \
                and bool(update.named_children) and text(update.named_children[0]) == var
        if c.type not in ("block", "comment"):
            return False
    return False


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


__all__ = [
    "path_to", "ancestors_of", "loops_around", "body_loops", "enclosing_function", "statement_of", "inside",
    "iterates_after", "exits", "can_return", "endless_range", "loop_can_end", "Constants", "constants",
    "fixed_iterations", "finite", "loop_variables",
]
