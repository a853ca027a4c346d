"""The shared per-function flow model of Go code: paths, bindings, and where values go.

Rules about resources ask the same three questions of a function: which paths lead out of it
(branches, loops, returns, defers, terminators), which local variable an identifier is (with Go's
block scoping and shadowing), and where a value goes (returned, stored, sent, passed on, captured by
a closure). This module answers them once per function, syntactically, and caches the answers in
ctx.shared["go.flow"] for every rule of the unit:

    from closelint.golang import facts, flow

    scope = facts.enclosing(ctx, node)        # the function or function literal around node
    g = flow.cfg(ctx, scope)                  # its statement-level control-flow graph
    n = g.node_for(ast)                       # the CFG node of the statement holding ast
    b = flow.bindings(ctx, scope)             # local variables of the whole declaration
    v = b.resolve(identifier)                 # the Binding an identifier refers to (or None: global)
    for use in v.uses: ...                    # every later occurrence, captures in literals included
    ctx_ = flow.value_context(expr)           # where a value goes: returned, assigned, argument...
    flow.forward(g, start, state, transfer, edge)  # a small path-sensitive forward analysis

The CFG (one per function body; function literals have their own): a node per simple statement
(`stmt`, `defer`, `go`, `return`, `terminate`), per branch condition (`cond`, whose out-edges carry
`Edge(cond, True/False)`), per loop or switch head (`loop`, `range`, `switch`, `select`), per case
clause (`case`), per `label` and jump (`jump`: break, continue, goto, fallthrough), plus `entry`,
`end` (falling off the closing brace) and `exit`. Terminators (panic, os.Exit, log.Fatal*, t.Fatal*,
FailNow, a package function none of whose paths returns, `select {}`) have no successors; a `for`
without condition or break, or a `range` over a channel nobody closes (time.Tick, a ticker's C),
never reaches the statement after it. Expressions inside a statement
(`&&`, closures) do not branch: a closure's body is its own function.

Everything is syntactic (no type checker). Building never recurses on the tree's depth: statement
nesting is handled by an explicit stack of generators, expressions by iterative walks.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

from closelint.golang import facts
from closelint.treeutil import text, word_offsets

_KEY = "go.flow"

# ------------------------------------------------------------------------------------------- CFG


@dataclass(frozen=True)
class Edge:
    """A branch outcome: `cond` (an expression node) evaluated to `value`."""

    cond: object
    value: bool


class Node:
    """One CFG node. kind: entry exit end stmt defer go return terminate cond loop range switch
    select case label jump. ast: the statement (or condition expression, clause, head) it stands for."""

    __slots__ = ("index", "kind", "ast", "succs", "preds")

    def __init__(self, index: int, kind: str, ast):
        self.index = index
        self.kind = kind
        self.ast = ast
        self.succs: list[tuple[Node, Edge | None]] = []
        self.preds: list[Node] = []

    def __repr__(self):
        line = self.ast.start_point[0] + 1 if self.ast is not None else 0
        return f"Node({self.index}, {self.kind}, line {line})"


_SIMPLE = {
    "expression_statement", "send_statement", "inc_statement", "dec_statement", "assignment_statement",
    "short_var_declaration", "var_declaration", "const_declaration", "type_declaration",
    "empty_statement", "receive_statement",
}
_CASES = ("expression_case", "type_case", "default_case", "communication_case")


class CFG:
    """The statement-level control-flow graph of one function body (a facts.Scope)."""

    def __init__(self, scope: facts.Scope):
        self.scope = scope
        self.nodes: list[Node] = []
        self.node_of: dict[int, Node] = {}  # ast node id -> CFG node
        self.entry = self._new("entry", scope.node)
        self.exit = self._new("exit", None)
        self.returns: list[Node] = []
        self.end: Node | None = None

    def _new(self, kind: str, ast) -> Node:
        n = Node(len(self.nodes), kind, ast)
        self.nodes.append(n)
        if ast is not None and kind not in ("entry",):
            self.node_of.setdefault(ast.id, n)
        return n

    def node_for(self, ast) -> Node | None:
        """The node of the statement (condition, clause) of this function that holds ast; for an
        expression inside a function literal, the statement holding the literal."""
        stop = self.scope.node.id
        n = ast
        while n is not None and n.id != stop:
            hit = self.node_of.get(n.id)
            if hit is not None:
                return hit
            n = n.parent
        return None

    def reachable_exit(self) -> bool:
        """Whether some path from entry leaves the function (`end` is always linked to `exit`, so
        exit's predecessors alone say nothing: a body ending in log.Fatal never reaches `end`)."""
        reach = getattr(self, "_reach", None)
        if reach is None:
            seen, stack = {id(self.entry)}, [self.entry]
            while stack:
                for nxt, _ in stack.pop().succs:
                    if id(nxt) not in seen:
                        seen.add(id(nxt))
                        stack.append(nxt)
            reach = self._reach = id(self.exit) in seen
        return reach


def _link(preds, node: Node):
    for p, label in preds:
        p.succs.append((node, label))
        node.preds.append(p)


def endless_range(gofile, clause, ctx=None, scope=None) -> bool:
    """A range over a channel that is never closed: `time.Tick(d)`, `time.NewTicker(d).C`, or (with
    ctx and scope) the C of a local assigned once from time.NewTicker (`t := time.NewTicker(d)`).
    Such a loop ends only through its body (break, return, goto, a terminator)."""
    if clause is None or clause.type != "range_clause":
        return False
    right = clause.child_by_field_name("right")
    if right is None:
        return False
    if right.type == "call_expression":
        return facts.call_name(gofile, right) == ("time", "Tick")
    if right.type != "selector_expression" or text(right.child_by_field_name("field")) != "C":
        return False
    operand = right.child_by_field_name("operand")
    if operand is not None and operand.type == "identifier":
        if ctx is None or scope is None:
            return False
        b = bindings(ctx, scope).resolve(operand)
        if b is None or b.defs or b.call_index > 0:
            return False
        operand = b.value
    return operand is not None and operand.type == "call_expression" \
        and facts.call_name(gofile, operand) == ("time", "NewTicker")


class _Builder:
    """Builds a CFG with an explicit stack of generators (no recursion on statement nesting)."""

    def __init__(self, ctx, scope: facts.Scope):
        self.ctx = ctx
        self.g = CFG(scope)
        self.gofile = scope.file
        self.targets: list[tuple] = []  # (kind, label name, break node list, continue node) frames
        self.labels: dict[str, Node] = {}
        self.gotos: list[tuple[Node, str]] = []
        self._fallthrough: list[Node] = []

    def build(self) -> CFG:
        g = self.g
        body = g.scope.body
        out = [(g.entry, None)]
        if body is not None:
            out = self._run(self._block(body, out))
            close = body.children[-1] if body.children else body
            g.end = g._new("end", close)
            _link(out, g.end)
            _link([(g.end, None)], g.exit)
        else:
            _link(out, g.exit)
        for node, name in self.gotos:
            target = self.labels.get(name)
            if target is not None:
                _link([(node, None)], target)
        return g

    @staticmethod
    def _run(gen):
        stack, value = [gen], None
        while stack:
            try:
                request = stack[-1].send(value)
            except StopIteration as stop:
                stack.pop()
                value = stop.value
                continue
            stack.append(request)
            value = None
        return value

    # Each builder below is a generator: `out = yield self._stmt(s, preds)` builds a sub-statement.

    def _block(self, block, preds):
        for s in _statements(block):
            preds = yield self._stmt(s, preds)
        return preds

    def _stmt(self, s, preds):
        g, t = self.g, s.type
        if t == "block":
            return (yield self._block(s, preds))
        if t in _SIMPLE:
            kind = "stmt"
            if t == "expression_statement" and self._terminates(s):
                kind = "terminate"
            n = g._new(kind, s)
            _link(preds, n)
            return [] if kind == "terminate" else [(n, None)]
        if t == "defer_statement" or t == "go_statement":
            n = g._new("defer" if t == "defer_statement" else "go", s)
            _link(preds, n)
            return [(n, None)]
        if t == "return_statement":
            n = g._new("return", s)
            _link(preds, n)
            _link([(n, None)], g.exit)
            g.returns.append(n)
            return []
        if t == "if_statement":
            return (yield self._if(s, preds))
        if t == "for_statement":
            return (yield self._for(s, preds, None))
        if t in ("expression_switch_statement", "type_switch_statement"):
            return (yield self._switch(s, preds, None))
        if t == "select_statement":
            return (yield self._select(s, preds, None))
        if t == "labeled_statement":
            name_node = s.child_by_field_name("label")
            name = text(name_node)
            n = g._new("label", s)
            _link(preds, n)
            self.labels[name] = n
            inner = next((c for c in s.named_children if c != name_node), None)
            if inner is None:
                return [(n, None)]
            if inner.type == "for_statement":
                return (yield self._for(inner, [(n, None)], name))
            if inner.type in ("expression_switch_statement", "type_switch_statement"):
                return (yield self._switch(inner, [(n, None)], name))
            if inner.type == "select_statement":
                return (yield self._select(inner, [(n, None)], name))
            return (yield self._stmt(inner, [(n, None)]))
        if t in ("break_statement", "continue_statement", "goto_statement", "fallthrough_statement"):
            n = g._new("jump", s)
            _link(preds, n)
            label = next((text(c) for c in s.named_children if c.type == "label_name"), None)
            if t == "goto_statement":
                if label:
                    self.gotos.append((n, label))
                return []
            if t == "fallthrough_statement":
                self._fallthrough.append(n)
                return []
            for frame in reversed(self.targets):
                kind, name, breaks, cont = frame
                if label is not None and name != label:
                    continue
                if t == "break_statement":
                    breaks.append((n, None))
                    break
                if kind == "loop":
                    _link([(n, None)], cont)
                    break
            return []
        # Anything else (a statement kind this model does not know): a plain step.
        n = g._new("stmt", s)
        _link(preds, n)
        return [(n, None)]

    def _endless(self, clause) -> bool:
        return endless_range(self.gofile, clause, self.ctx, self.g.scope)

    def _terminates(self, stmt) -> bool:
        call = stmt.named_children[0] if stmt.named_children else None
        return call is not None and terminates(self.ctx, self.gofile, call)

    def _if(self, s, preds):
        g = self.g
        out = []
        while True:  # else-if chains iteratively
            init = s.child_by_field_name("initializer")
            if init is not None:
                preds = yield self._stmt(init, preds)
            cond = s.child_by_field_name("condition")
            c = g._new("cond", cond)
            _link(preds, c)
            then = s.child_by_field_name("consequence")
            out += (yield self._block(then, [(c, Edge(cond, True))])) if then is not None else []
            alt = s.child_by_field_name("alternative")
            if alt is None:
                out.append((c, Edge(cond, False)))
                return out
            if alt.type == "if_statement":
                s, preds = alt, [(c, Edge(cond, False))]
                continue
            out += yield self._block(alt, [(c, Edge(cond, False))])
            return out

    def _for(self, s, preds, label):
        g = self.g
        body = s.child_by_field_name("body")
        clause = next((c for c in s.named_children if c != body), None)
        breaks: list = []
        update = None
        if clause is not None and clause.type == "for_clause":
            init = clause.child_by_field_name("initializer")
            if init is not None:
                preds = yield self._stmt(init, preds)
            cond = clause.child_by_field_name("condition")
            update = clause.child_by_field_name("update")
        elif clause is not None and clause.type == "range_clause":
            cond = None
        else:
            cond = clause
        if clause is not None and clause.type == "range_clause":
            head = g._new("range", clause)
            into, leave = (head, None), (head, None)
            if self._endless(clause):
                leave = None  # a channel nobody closes: only break, return or goto leave
        elif cond is not None:
            head = g._new("cond", cond)
            into, leave = (head, Edge(cond, True)), (head, Edge(cond, False))
        else:
            head = g._new("loop", s)
            into, leave = (head, None), None
        _link(preds, head)
        cont = head
        if update is not None:
            cont = g._new("stmt", update)
            _link([(cont, None)], head)
        self.targets.append(("loop", label, breaks, cont))
        out = (yield self._block(body, [into])) if body is not None else [into]
        self.targets.pop()
        _link(out, cont)
        result = list(breaks)
        if leave is not None:
            result.append(leave)
        return result

    def _switch(self, s, preds, label):
        g = self.g
        init = s.child_by_field_name("initializer")
        if init is not None:
            preds = yield self._stmt(init, preds)
        head = g._new("switch", s.child_by_field_name("value") or s)
        _link(preds, head)
        tagless = s.type == "expression_switch_statement" and s.child_by_field_name("value") is None
        clauses = [c for c in s.named_children if c.type in _CASES]
        breaks: list = []
        self.targets.append(("switch", label, breaks, None))
        case_nodes = [g._new("case", c) for c in clauses]
        out: list = []
        saved = self._fallthrough
        for i, (clause, cn) in enumerate(zip(clauses, case_nodes)):
            edge = None
            if tagless and clause.type == "expression_case":
                values = clause.child_by_field_name("value")
                if values is not None and len(values.named_children) == 1:
                    edge = Edge(values.named_children[0], True)
            _link([(head, edge)], cn)
            self._fallthrough = []
            out += yield self._clause(clause, [(cn, None)])
            if self._fallthrough and i + 1 < len(case_nodes):
                _link([(f, None) for f in self._fallthrough], case_nodes[i + 1])
        self._fallthrough = saved
        self.targets.pop()
        if not any(c.type == "default_case" for c in clauses):
            out.append((head, None))
        return out + breaks

    def _select(self, s, preds, label):
        g = self.g
        head = g._new("select", s)
        _link(preds, head)
        clauses = [c for c in s.named_children if c.type in _CASES]
        breaks: list = []
        self.targets.append(("select", label, breaks, None))
        out: list = []
        for clause in clauses:
            cn = g._new("case", clause)
            _link([(head, None)], cn)
            start = [(cn, None)]
            comm = clause.child_by_field_name("communication")
            if comm is not None:
                start = yield self._stmt(comm, start)
            out += yield self._clause(clause, start)
        self.targets.pop()
        return out + breaks  # `select {}` has no way out

    def _clause(self, clause, preds):
        for s in _statements(clause):
            if s == clause.child_by_field_name("communication"):
                continue
            preds = yield self._stmt(s, preds)
        return preds


def _statements(node):
    """The statements directly in a block or case clause (through its statement_list)."""
    out = []
    for c in node.named_children:
        if c.type == "statement_list":
            out.extend(x for x in c.named_children if x.type != "comment")
        elif c.type.endswith("_statement") or c.type in _SIMPLE or c.type == "block":
            out.append(c)
    return out


def _cache(ctx) -> dict:
    cache = ctx.shared.get(_KEY)
    if cache is None:
        cache = ctx.shared[_KEY] = {"cfg": {}, "bindings": {}, "noreturn": {}}
    return cache


def cfg(ctx, scope: facts.Scope) -> CFG:
    """The CFG of scope's body, built once per unit."""
    cache = _cache(ctx)["cfg"]
    g = cache.get(scope.node.id)
    if g is None:
        g = cache[scope.node.id] = _Builder(ctx, scope).build()
    return g


# ----------------------------------------------------------------------------------- terminators

_LOOSE_TERMINATORS = {"Fatal", "Fatalf", "Fatalln", "Exit", "Exitf", "Panic", "Panicf", "Panicln"}


def terminates(ctx, gofile, call) -> bool:
    """A call after which the path does not go on: facts.is_terminator, a package-qualified
    Fatal*/Exit/Panic* (klog.Fatalf, logrus.Fatal, utils.Fatalf), or a function of this package none
    of whose paths returns (`func fatal(err error) { log.Fatal(err) }`)."""
    if call is None or call.type != "call_expression":
        return False
    if facts.is_terminator(gofile, call):
        return True
    fn = call.child_by_field_name("function")
    if fn is None:
        return False
    if fn.type == "selector_expression":
        operand = fn.child_by_field_name("operand")
        name = text(fn.child_by_field_name("field"))
        if operand is not None and operand.type == "identifier" and gofile.import_path(text(operand)):
            return name in _LOOSE_TERMINATORS
        return False
    if fn.type == "identifier":
        target = ctx.package.functions.get(text(fn))
        if target is not None and target.body is not None:
            return _no_return(ctx, target)
    return False


def _no_return(ctx, fn) -> bool:
    memo = _cache(ctx)["noreturn"]
    key = fn.node.id
    if key in memo:
        return memo[key]
    memo[key] = False  # in progress: a recursive function is assumed to return
    scope = facts.scope_at(ctx, fn.node)
    result = scope is not None and not cfg(ctx, scope).reachable_exit()
    memo[key] = result
    return result


# -------------------------------------------------------------------------------------- bindings


@dataclass(eq=False)
class Binding:
    """A local variable (parameter, result, receiver, var, :=, range, type-switch alias) of one
    function declaration, with every identifier that refers to it after its declaration."""

    name: str
    node: object  # the declaring identifier
    kind: str  # param | result | receiver | var | short | range | alias | const
    scope_node: object  # the function (declaration or literal) whose body or signature declares it
    decl: object  # the declaring statement (or parameter declaration)
    type_node: object = None  # an explicit type, when the declaration writes one
    value: object = None  # the initializer expression, when positional (x := expr)
    call_index: int = -1  # x, y := f(): the value is result call_index of the call in `value`
    uses: list = field(default_factory=list)  # identifier nodes, in document order
    defs: list = field(default_factory=list)  # identifier nodes that assign it again

    def __repr__(self):
        return f"Binding({self.name}@{self.node.start_point[0] + 1})"

    @property
    def is_param(self) -> bool:
        return self.kind in ("param", "result", "receiver")


class Bindings:
    """The locals of one function declaration (its literals included), resolved name by name.

    Most candidates ask about a name or two (is the `c` of `c.Get(...)` a local?), so a name is
    resolved by walking only the nodes of the declaration whose text holds it: a node where the
    name is not written can neither declare nor use it, so that name's bindings come out exactly as
    a walk of everything would make them. Past a few names, the rest are resolved in one full walk
    (names already resolved keep their Binding objects: callers compare them by identity)."""

    # A full walk costs about as much as this many walks for one name each.
    NAMES_BY_PARTS = 8

    def __init__(self, decl_node, data: bytes):
        self.decl_node = decl_node
        self.data = data  # the file's bytes, where the names are looked for
        self._of: dict[int, Binding] = {}  # identifier node id -> binding (uses, defs, declarations)
        self._names: set[bytes] = set()  # names resolved so far
        self._complete = False  # every name resolved

    def resolve(self, ident) -> Binding | None:
        if ident is None:
            return None
        b = self._of.get(ident.id)
        if b is None and not self._complete:
            name = ident.text
            if name not in self._names:
                self._resolve_name(name)
                b = self._of.get(ident.id)
        return b

    def declared_by(self, ident) -> Binding | None:
        b = self.resolve(ident)
        return b if b is not None and b.node.id == ident.id else None

    def _resolve_name(self, name: bytes) -> None:
        decl = self.decl_node
        if len(self._names) >= self.NAMES_BY_PARTS:
            _resolve(self, None, None)
            self._complete = True
            return
        self._names.add(name)
        where = list(word_offsets(self.data, name, decl.start_byte, decl.end_byte, ascii_words=True))
        if where:
            _resolve(self, name, where)


def bindings(ctx, scope: facts.Scope) -> Bindings:
    """The locals of scope's whole declaration (function literals share their parent's)."""
    decl = scope.declaration.node
    cache = _cache(ctx)["bindings"]
    b = cache.get(decl.id)
    if b is None:
        b = cache[decl.id] = Bindings(decl, scope.file.source.data)
    return b


_SCOPED = {"block", "if_statement", "for_statement", "expression_switch_statement",
           "type_switch_statement", "select_statement", *_CASES}
# Nodes that neither name nor hold a local: not visited (a fifth of a function's nodes).
_INERT = {"field_identifier", "type_identifier", "package_identifier", "label_name", "comment",
          "int_literal", "float_literal", "imaginary_literal", "rune_literal", "interpreted_string_literal",
          "raw_string_literal", "nil", "true", "false", "iota"}
_FUNCS = ("function_declaration", "method_declaration", "func_literal")


def _resolve(out: Bindings, only: bytes | None, where: list[int] | None) -> None:
    """Go's block scoping, iteratively: declarations take effect after their statement (so the
    right side of `x := x` is the outer x); `:=` reuses a name already declared in the same block.
    Scopes map a name's bytes (no decoding per identifier) to its binding.

    With `only`, the bindings of that one name, visiting only the nodes that hold one of its
    offsets (`where`, sorted); without, those of every name not resolved yet."""
    decl = out.decl_node
    envs: list[dict[bytes, Binding]] = []
    func_stack: list = []
    done = out._names
    n_where = len(where) if where is not None else 0

    # With `only`, a node's children that hold the name are found by asking tree-sitter for the child
    # at each occurrence (a cursor, C-side) and jumping past that child's other occurrences: a block of
    # two hundred statements with the name in three costs three steps, not two hundred nodes listed in
    # Python; a 20,000-deep nesting costs one step per level.
    cursor = decl.walk() if where is not None else None

    def visited(node) -> list:
        """node's named children, in reverse (for the work stack), less those the walk need not enter."""
        if where is None:
            return [c for c in reversed(node.named_children) if c.type not in _INERT]
        out: list = []
        end = node.end_byte
        k = bisect_left(where, node.start_byte)
        while k < n_where and where[k] < end:
            off = where[k]
            cursor.reset(node)
            if cursor.goto_first_child_for_byte(off) is None:  # the first child ending after off
                break
            c = cursor.node
            if c.start_byte > off:  # off is between children (so is every occurrence before c)
                k = bisect_left(where, c.start_byte, k + 1)
                continue
            if c.is_named and c.type not in _INERT:
                out.append(c)
            k = bisect_left(where, c.end_byte, k + 1)  # c's other occurrences: c is listed once
        out.reverse()
        return out

    def lookup(name):
        for env in reversed(envs):
            b = env.get(name)
            if b is not None:
                return b
        return None

    def declare(ident, kind, stmt, type_node=None, value=None, call_index=-1):
        key = ident.text
        if key == b"_" or not key or (key != only if only is not None else key in done):
            return
        b = Binding(text(ident), ident, kind, func_stack[-1], stmt, type_node, value, call_index)
        envs[-1][key] = b
        out._of[ident.id] = b

    def params(func, kind_of):
        for field_name, kind in kind_of:
            plist = func.child_by_field_name(field_name)
            if plist is None or plist.type != "parameter_list":
                continue
            for d in plist.named_children:
                if d.type not in ("parameter_declaration", "variadic_parameter_declaration"):
                    continue
                t = d.child_by_field_name("type")
                for n in d.children_by_field_name("name"):
                    declare(n, kind, d, type_node=t)

    # work items: a node to visit (most items, so left unwrapped) | ("func", node) | ("pop",) |
    # ("popfunc",) | ("call", fn)
    work: list = [("func", decl)]
    while work:
        node = work.pop()
        if type(node) is tuple:
            op = node[0]
            if op == "pop":
                envs.pop()
            elif op == "popfunc":
                envs.pop()
                func_stack.pop()
            elif op == "call":
                node[1]()
            else:  # "func"
                func = node[1]
                func_stack.append(func)
                envs.append({})
                params(func, (("receiver", "receiver"), ("parameters", "param"), ("result", "result")))
                work.append(("popfunc",))
                body = func.child_by_field_name("body")
                if body is not None:  # the body's outermost block is the parameters' block
                    work += visited(body)
            continue
        t = node.type
        if t == "identifier":
            b = lookup(node.text)
            if b is not None:
                out._of[node.id] = b
                b.uses.append(node)
            continue
        if t == "func_literal":
            work.append(("func", node))
            continue
        if t in ("short_var_declaration", "range_clause", "receive_statement") and _declares(node):
            left = node.child_by_field_name("left")
            right = node.child_by_field_name("right")
            stmt = node
            kind = {"short_var_declaration": "short", "range_clause": "range",
                    "receive_statement": "short"}[t]

            def finish(left=left, right=right, stmt=stmt, kind=kind):
                lhs = left.named_children if left is not None else []
                rhs = right.named_children if right is not None and right.type == "expression_list" else (
                    [right] if right is not None else [])
                for i, ident in enumerate(lhs):
                    if ident.type != "identifier":
                        continue
                    existing = envs[-1].get(ident.text)
                    if existing is not None and kind == "short":
                        out._of[ident.id] = existing
                        existing.uses.append(ident)
                        existing.defs.append(ident)
                        continue
                    if kind == "range":
                        declare(ident, kind, stmt, value=right, call_index=i)
                    elif len(lhs) == len(rhs):
                        declare(ident, kind, stmt, value=rhs[i])
                    elif len(rhs) == 1:
                        declare(ident, kind, stmt, value=rhs[0], call_index=i)
                    else:
                        declare(ident, kind, stmt)

            work.append(("call", finish))
            if right is not None:
                work.append(right)
            continue
        if t == "var_spec" or t == "const_spec":
            names = node.children_by_field_name("name")
            type_node = node.child_by_field_name("type")
            value = node.child_by_field_name("value")

            def finish(names=names, type_node=type_node, value=value, spec=node,
                       kind="var" if t == "var_spec" else "const"):
                rhs = value.named_children if value is not None else []
                for i, ident in enumerate(names):
                    if len(rhs) == len(names):
                        declare(ident, kind, spec, type_node=type_node, value=rhs[i])
                    elif len(rhs) == 1:
                        declare(ident, kind, spec, type_node=type_node, value=rhs[0], call_index=i)
                    else:
                        declare(ident, kind, spec, type_node=type_node)

            work.append(("call", finish))
            if value is not None:
                work.append(value)
            if type_node is not None:
                work.append(type_node)
            continue
        if t == "type_switch_statement":
            envs.append({})
            work.append(("pop",))
            alias = node.child_by_field_name("alias")
            value = node.child_by_field_name("value")
            init = node.child_by_field_name("initializer")
            rest = [c for c in node.named_children if c.type in _CASES]
            for c in reversed(rest):
                work.append(c)
            if alias is not None:
                def finish(alias=alias, stmt=node, value=value):
                    for ident in alias.named_children:
                        if ident.type == "identifier":
                            declare(ident, "alias", stmt, value=value)
                work.append(("call", finish))
            if value is not None:
                work.append(value)
            if init is not None:
                work.append(init)
            continue
        if t in _SCOPED:
            envs.append({})
            work.append(("pop",))
        if t == "assignment_statement":
            left = node.child_by_field_name("left")
            if left is not None:
                for ident in left.named_children:
                    if ident.type == "identifier":
                        b = lookup(ident.text)
                        if b is not None:
                            b.defs.append(ident)
        if t == "keyed_element":
            # a struct literal's key is a field name, not a variable
            kids = node.named_children
            if len(kids) == 2 and kids[0].type == "literal_element" and kids[0].named_children \
                    and kids[0].named_children[0].type == "identifier":
                work.append(kids[1])
                continue
        work += visited(node)


def _declares(node) -> bool:
    if node.type == "short_var_declaration":
        return True
    # range_clause / receive_statement declare with `:=` only
    return any(c.type == ":=" for c in node.children)


# ------------------------------------------------------------------------------ where values go


@dataclass
class ValueContext:
    """Where the value of an expression goes.

    kind: returned | assigned | argument | sent | called | compared | receiver | statement |
          go | defer | range | other
    node: the statement, call or expression that receives it
    target: for `assigned`, the left-hand expression it lands in (None for a blank or a missing one)
    index: for `argument`, the argument position; for `assigned`, the result position
    wrapped: it went through a composite literal, &, or a conversion-like wrapper on its way
    expr: the outermost expression that carries the value (the one `node` receives)
    """

    kind: str
    node: object
    target: object = None
    index: int = -1
    wrapped: bool = False
    expr: object = None


_TRANSPARENT = {"parenthesized_expression", "type_assertion_expression"}


def value_context(expr) -> ValueContext:
    """Climb from expr through parentheses, `&`, composite literals and type assertions to the
    place that receives its value."""
    wrapped = False
    cur = expr
    while True:
        p = cur.parent
        if p is None:
            return ValueContext("other", None, expr=cur)
        t = p.type
        if t in _TRANSPARENT:
            if t == "type_assertion_expression" and p.child_by_field_name("operand") != cur:
                return ValueContext("other", p, expr=cur)
            cur = p
            continue
        if t == "unary_expression":
            op = text(p.child_by_field_name("operator") or p.children[0])
            if op == "&":
                wrapped, cur = True, p
                continue
            if op == "<-":
                return ValueContext("other", p, expr=cur)
            return ValueContext("other", p, expr=cur)
        if t in ("literal_element", "keyed_element", "literal_value"):
            if t == "keyed_element" and p.named_children and p.named_children[0] == cur:
                return ValueContext("other", p, expr=cur)  # a key
            cur = p
            continue
        if t == "composite_literal":
            wrapped, cur = True, p
            continue
        if t == "variadic_argument":
            cur = p
            continue
        if t == "expression_list":
            gp = p.parent
            idx = _index_in(p, cur)
            if gp is None:
                return ValueContext("other", p, expr=cur)
            if gp.type == "return_statement":
                return ValueContext("returned", gp, index=idx, wrapped=wrapped, expr=cur)
            if gp.type in ("assignment_statement", "short_var_declaration", "var_spec", "const_spec"):
                if gp.child_by_field_name("right") == p or gp.child_by_field_name("value") == p:
                    left = gp.child_by_field_name("left")
                    names = left.named_children if left is not None else gp.children_by_field_name("name")
                    target = names[idx] if idx < len(names) else None
                    if target is not None and target.type == "identifier" and text(target) == "_":
                        target = None
                    return ValueContext("assigned", gp, target=target, index=idx, wrapped=wrapped, expr=cur)
                return ValueContext("other", gp, expr=cur)  # on the left: assigned to
            if gp.type == "expression_case":
                return ValueContext("compared", gp, expr=cur)
            return ValueContext("other", gp, expr=cur)
        if t == "argument_list":
            call = p.parent
            return ValueContext("argument", call, index=_index_in(p, cur), wrapped=wrapped, expr=cur)
        if t == "call_expression" and p.child_by_field_name("function") == cur:
            gp = p.parent
            kind = "called"
            return ValueContext(kind, p, wrapped=wrapped, expr=cur)
        if t == "send_statement":
            if p.child_by_field_name("value") == cur:
                return ValueContext("sent", p, wrapped=wrapped, expr=cur)
            return ValueContext("other", p, expr=cur)
        if t == "binary_expression":
            return ValueContext("compared", p, expr=cur)
        if t == "selector_expression":
            return ValueContext("receiver", p, expr=cur)
        if t == "index_expression" or t == "slice_expression":
            return ValueContext("other", p, expr=cur)
        if t == "range_clause":
            return ValueContext("range", p, wrapped=wrapped, expr=cur)
        if t == "expression_statement":
            return ValueContext("statement", p, wrapped=wrapped, expr=cur)
        if t in ("go_statement", "defer_statement"):
            return ValueContext(t[:-len("_statement")], p, expr=cur)
        if t == "return_statement":
            return ValueContext("returned", p, index=0, wrapped=wrapped, expr=cur)
        if t == "var_spec":
            return ValueContext("other", p, expr=cur)
        return ValueContext("other", p, expr=cur)


def _index_in(parent, child) -> int:
    for i, c in enumerate(parent.named_children):
        if c.id == child.id:
            return i
    return -1


def selector_chain(ident) -> tuple[object, list[str]]:
    """From an identifier, the longest chain of field selections it is the operand of (through
    parentheses and type assertions): `resp` in `resp.Body.Close()` -> (the `resp.Body.Close` node,
    ["Body", "Close"])."""
    cur, fields = ident, []
    while True:
        p = cur.parent
        if p is not None and p.type == "selector_expression" and p.child_by_field_name("operand") == cur:
            fields.append(text(p.child_by_field_name("field")))
            cur = p
            continue
        if p is not None and p.type == "parenthesized_expression":
            cur = p
            continue
        if p is not None and p.type == "type_assertion_expression" and p.child_by_field_name("operand") == cur:
            cur = p  # w.(*gzip.Writer).Close()
            continue
        return cur, fields


def literal_chain(node, scope_node) -> list:
    """The function literals between node and scope_node, outermost first."""
    out = []
    n = node.parent
    while n is not None and n.id != scope_node.id:
        if n.type == "func_literal":
            out.append(n)
        n = n.parent
    out.reverse()
    return out


# ------------------------------------------------------------------------------ forward analysis


def forward(g: CFG, start: Node, state, transfer, edge=None, limit: int = 20000):
    """Propagate state from start's successors along every path (loops included) until each path
    ends: transfer(node, state) -> the state after node, or None to end the path there;
    edge(node, Edge | None, state) -> the state on that edge, or None to cut it. Arriving back at
    start calls transfer(start, state) too. States must be hashable; each (node, state) pair is
    visited once, so a small state space keeps this linear in the size of the graph."""
    seen: set = set()
    work = []

    def push_succs(node, st):
        for succ, label in node.succs:
            s = edge(node, label, st) if edge is not None else st
            if s is not None:
                work.append((succ, s))

    push_succs(start, state)
    steps = 0
    while work:
        node, st = work.pop()
        key = (node.index, st)
        if key in seen:
            continue
        seen.add(key)
        steps += 1
        if steps > limit:
            return False
        out = transfer(node, st)
        if out is None:
            continue
        push_succs(node, out)
    return True


# ------------------------------------------------------------------------------------ types


class Types:
    """Syntactic types of expressions in one function declaration, with what a rule knows about
    other packages' functions (`known`: ("database/sql", "Open") -> ["*database/sql.DB", "error"];
    ("*database/sql.DB", "Begin") -> ["*database/sql.Tx", "error"] for methods).

    Answers None where the syntax does not tell; callers must not guess from names."""

    def __init__(self, ctx, scope: facts.Scope, known: dict | None = None):
        self.ctx = ctx
        self.scope = scope
        self.gofile = scope.file
        self.bindings = bindings(ctx, scope)
        self.known = known or {}
        self._memo: dict[int, str | None] = {}

    def of_binding(self, b: Binding) -> str | None:
        key = id(b)
        if key in self._memo:
            return self._memo[key]
        self._memo[key] = None  # in progress
        t = None
        if b.type_node is not None:
            t = self.gofile.qualify(b.type_node).removeprefix("...")
            if b.decl is not None and b.decl.type == "variadic_parameter_declaration":
                t = "[]" + t
        elif b.value is not None:
            if b.kind == "range":
                t = _element_type(self.of(b.value), b.call_index)
            elif b.kind == "alias":
                t = None
            else:
                t = self.of(b.value, max(b.call_index, 0))
        self._memo[key] = t
        return t

    def of(self, expr, index: int = 0) -> str | None:
        """The type of expr (result `index` of a call)."""
        if expr is None:
            return None
        t = expr.type
        if t == "parenthesized_expression" and expr.named_children:
            return self.of(expr.named_children[0], index)
        if t == "identifier":
            b = self.bindings.resolve(expr)
            if b is not None:
                return self.of_binding(b)
            return self._global(text(expr))
        if t == "selector_expression":
            operand = expr.child_by_field_name("operand")
            fname = text(expr.child_by_field_name("field"))
            if operand is not None and operand.type == "identifier" and self.bindings.resolve(operand) is None:
                path = self.gofile.import_path(text(operand))
                if path is not None:
                    return facts.KNOWN_GLOBALS.get(f"{path}.{fname}")
            base = self.of(operand)
            return self.field(base, fname) if base else None
        if t == "call_expression":
            return self._call(expr, index)
        if t == "type_assertion_expression":
            tn = expr.child_by_field_name("type")
            return self.gofile.qualify(tn) if tn is not None else None
        if t == "index_expression":
            return _element_type(self.of(expr.child_by_field_name("operand")), 1)
        if t == "unary_expression":
            op = text(expr.child_by_field_name("operator") or expr.children[0])
            inner = expr.child_by_field_name("operand")
            if op == "&" and inner is not None and inner.type == "composite_literal":
                tn = inner.child_by_field_name("type")
                return "*" + self.gofile.qualify(tn) if tn is not None else None
            if op == "*":
                it = self.of(inner)
                return it[1:] if it and it.startswith("*") else None
            return None
        return facts.expression_type(self.gofile, expr)

    def _global(self, name: str) -> str | None:
        """facts.global_type, and the result of a known call (`var tracer = otel.Tracer("x")`)."""
        glob = self.ctx.package.globals.get(name)
        if glob is None:
            return None
        gf, spec = glob
        value = spec.child_by_field_name("value")
        v = value.named_children[0] if value is not None and value.named_children else None
        if spec.child_by_field_name("type") is None and v is not None and v.type == "call_expression":
            fn = v.child_by_field_name("function")
            if fn is not None and fn.type == "selector_expression":
                operand = fn.child_by_field_name("operand")
                path = gf.import_path(text(operand)) if operand is not None and operand.type == "identifier" \
                    else None
                res = self.known.get((path, text(fn.child_by_field_name("field")))) if path else None
                return res[0] if res else None
        return facts.global_type(self.ctx, name)

    def field(self, base: str, name: str) -> str | None:
        """The type of base.name for a struct type of this package (embedded structs followed)."""
        struct = base.lstrip("*")
        seen = set()
        while struct and "." not in struct and struct not in seen:
            seen.add(struct)
            fields = self.ctx.package.struct_fields.get(struct)
            if fields is None:
                return None
            if name in fields:
                return fields[name]
            embedded = [t for f, t in fields.items() if t.lstrip("*").split(".")[-1] == f and "." not in t]
            struct = embedded[0].lstrip("*") if len(embedded) == 1 else ""
        return None

    def method_results(self, recv_type: str, name: str) -> list[str] | None:
        base = recv_type.lstrip("*")
        if "." not in base:
            fn = self.ctx.package.method(base, name)
            if fn is not None:
                return [p.type for p in fn.results] or None
        for key in (recv_type, "*" + base, base):
            if (key, name) in self.known:
                return self.known[(key, name)]
        return None

    def _call(self, call, index: int) -> str | None:
        fn = call.child_by_field_name("function")
        args = call.child_by_field_name("arguments")
        if fn is None:
            return None
        if fn.type == "identifier" and self.bindings.resolve(fn) is None:
            name = text(fn)
            if name == "new" and args is not None and args.named_children:
                return "*" + self.gofile.qualify(args.named_children[0])
            target = self.ctx.package.functions.get(name)
            if target is not None and index < len(target.results):
                return target.results[index].type
            if name in self.ctx.package.type_defs:  # a conversion
                return name
            return None
        if fn.type == "parenthesized_expression":  # (*T)(x)
            return self.gofile.qualify(text(fn)[1:-1])
        if fn.type == "selector_expression":
            operand = fn.child_by_field_name("operand")
            name = text(fn.child_by_field_name("field"))
            if operand is not None and operand.type == "identifier" and self.bindings.resolve(operand) is None:
                path = self.gofile.import_path(text(operand))
                if path is not None:
                    res = self.known.get((path, name))
                    return res[index] if res and index < len(res) else None
            recv = self.of(operand)
            if recv:
                res = self.method_results(recv, name)
                return res[index] if res and index < len(res) else None
        return None


def _element_type(container: str | None, index: int) -> str | None:
    """[]T, [N]T, map[K]V, chan T: the key (index 0) or element (index 1) type."""
    if not container:
        return None
    c = container.lstrip("*")
    if c.startswith("[]") or (c.startswith("[") and "]" in c):
        return "int" if index == 0 else c[c.index("]") + 1:]
    if c.startswith("map["):
        depth, i = 0, 3
        for i in range(3, len(c)):
            if c[i] == "[":
                depth += 1
            elif c[i] == "]":
                depth -= 1
                if depth == 0:
                    break
        return c[4:i] if index == 0 else c[i + 1:]
    if c.startswith("chan ") or c.startswith("<-chan "):
        return c.split(" ", 1)[1] if index == 0 else None
    return None


def embedded_types(ctx, type_name: str) -> list[str]:
    """The embedded fields' types of a struct type of this package (`type DB struct{ *sql.DB }`
    -> ["*database/sql.DB"]): where a method the type does not declare comes from."""
    fields = ctx.package.struct_fields.get(type_name.lstrip("*"), {})
    return [t for f, t in fields.items() if t.lstrip("*").split(".")[-1] == f]
