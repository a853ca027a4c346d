"""Goroutine facts of a Go package: what a `go` statement runs, the loops it runs with their exits,
the operations it can block in, the stop signals it listens to, and the channels made around it.

    names = Names(stop_signals=[...], timer_channels=[...], blocking_methods=[...], ...)  # from options
    for start in go_statements(ctx):            # every `go` statement of the target files
        target = resolve_call(ctx, start.spawner, start.call)  # the Scope it runs (literal, func, method)
        for loop in forever_loops(ctx, target, names):   # unbounded loops, their exits and waits
            loop.stop_aware, loop.blocked_forever, loop.bare_sends, loop.exits
    channel_makes(ctx, scope)                   # name -> [ChanMake]: make call, capacity text or None
    field_channel_makes(ctx)                    # struct field -> capacities of the channels made for it
    channel_protocol(ctx)                       # (request field, reply field) pairs
    signal_channels(ctx)                        # channels registered with signal.Notify

Everything is syntactic (closelint has no type checker): a channel is a stop signal or a timer by
its name and shape (`<-ctx.Done()`, `<-p.Quit()`, `<-s.quit`, `<-time.After(d)`, `<-ticker.C`),
and a call blocks "by contract" by its method name (`Wait`, `FrontWait`, `NextWait`). Where the
syntax does not tell, the answer is the one that reports nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from closelint import parsing
from closelint.golang import facts, loops
from closelint.golang.facts import FUNC_NODES, Scope, innermost_function
from closelint.treeutil import needle_spans, path_to, paths_at, text, walk, word_offsets, word_spans

_BREAK_TARGETS = ("for_statement", "expression_switch_statement", "type_switch_statement", "select_statement")
_CONTEXT_TYPES = ("context.Context",)


def descend(top, node) -> list:
    """The nodes from top down to node's parent, top first; [] when node is not strictly under top.

    tree-sitter finds a node's parent by searching down from the root, so climbing `.parent` costs
    depth^2 on a deeply nested file; descending from a known ancestor costs depth."""
    if node.id == top.id or node.start_byte < top.start_byte or node.end_byte > top.end_byte:
        return []
    return path_to(node, top)[:-1]


def ancestors_within(node, top) -> list:
    """node's ancestors below top (top excluded), innermost first."""
    return list(reversed(descend(top, node)[1:]))


def between(node, top) -> list:
    """node's ancestors below top, innermost first, up to the first function boundary."""
    out = []
    for a in ancestors_within(node, top):
        if a.type in FUNC_NODES:
            break
        out.append(a)
    return out


def identifiers(ctx, scope: Scope) -> dict[str, list]:
    """name -> identifier nodes in scope's body (nested literals included), in document order;
    found once per scope by a query."""
    cache = ctx.shared.setdefault("go.goroutines.idents", {})
    out = cache.get(scope.node.id)
    if out is None:
        out = cache[scope.node.id] = {}
        if scope.body is not None:
            for n in parsing.captures("go", "(identifier) @id", scope.body).get("id", []):
                out.setdefault(text(n), []).append(n)
            for v in out.values():
                v.sort(key=lambda n: n.start_byte)
    return out


def _prune_literals(n) -> bool:
    return n.type == "func_literal"


def camel_words(name: str) -> list[str]:
    """`remotePeer` -> [remote, peer]; `HTTPConn` -> [http, conn]; `peer_id` -> [peer, id]."""
    parts = re.findall(r"[A-Z]+(?=[A-Z][a-z]|\d|\b|_)|[A-Z]?[a-z]+|[A-Z]+|\d+", name)
    return [p.lower() for p in parts]


class Names:
    """The name patterns a rule configures (globs, matched case-insensitively)."""

    def __init__(self, *, stop_signals=(), timer_channels=(), blocking_methods=(), non_blocking_methods=(),
                 non_blocking_receivers=(), non_blocking_receiver_names=()):
        self.non_blocking_receiver_names = [p.lower() for p in non_blocking_receiver_names]
        self.stop = [p.lower() for p in stop_signals]
        self.timer = [p.lower() for p in timer_channels]
        self.blocking = list(blocking_methods)
        self.non_blocking = list(non_blocking_methods)
        self.non_blocking_receivers = list(non_blocking_receivers)

    @staticmethod
    def _match(name: str, patterns, fold=True) -> bool:
        n = name.lower() if fold else name
        return any(fnmatchcase(n, p) for p in patterns)

    def is_stop_name(self, name: str) -> bool:
        return bool(name) and self._match(name, self.stop)

    def is_timer_name(self, name: str) -> bool:
        return bool(name) and self._match(name, self.timer)

    def is_non_blocking_receiver_name(self, name: str) -> bool:
        return self._match(name, self.non_blocking_receiver_names)

    def is_blocking_method(self, name: str) -> bool:
        return (self._match(name, self.blocking, fold=False)
                and not self._match(name, self.non_blocking, fold=False))


# ------------------------------------------------------------------------------------------ go statements

@dataclass
class GoStart:
    """One `go` statement: where it is, the call it makes, and the function body that contains it."""

    node: object  # go_statement
    call: object  # call_expression
    spawner: Scope  # the function (declaration or literal) the go statement sits in
    file: object  # GoFile

    @property
    def function(self):
        return self.call.child_by_field_name("function")

    @property
    def args(self) -> list:
        a = self.call.child_by_field_name("arguments")
        return list(a.named_children) if a is not None else []

    def header_end(self):
        """The end point of the statement's head: `go s.run(p)` or `go func(...) {`."""
        fn = self.function
        if fn is not None and fn.type == "func_literal":
            body = fn.child_by_field_name("body")
            if body is not None:
                return (body.start_point[0], body.start_point[1] + 1)
        return self.call.end_point if self.call.start_point[0] == self.call.end_point[0] else fn.end_point


# A go statement as bytes: `go` at a statement's start, then a call (comments saying "go " don't match).
# The statement-start check is done on the byte before each hit: a regex that starts with it (an
# alternation or a lookbehind) tries every position of the file and costs 30 times as much.
_GO_STATEMENT = re.compile(rb"go\s+(?:func\b|[\w.()\[\]*]+\()")


def _has_go_statement(data: bytes) -> bool:
    for m in _GO_STATEMENT.finditer(data):
        i = m.start()
        if i == 0 or data[i - 1] in b" \t\r\n;{":
            return True
    return False


def go_statements(ctx) -> list[GoStart]:
    """The go statements of the unit's target files (findings are only reported there), found from
    the `go` keywords of the text."""
    cache = ctx.shared.get("go.goroutines.starts")
    if cache is None:
        cache = ctx.shared["go.goroutines.starts"] = []
        for gofile in ctx.package.files:
            data = gofile.source.data
            if not gofile.source.is_target or not _has_go_statement(data):
                continue  # no `go` statement: no tree needed
            keywords = word_spans(data, b"go")
            for path in paths_at(gofile.source.root, keywords):
                if len(path) < 2 or path[-1].type != "go" or path[-2].type != "go_statement":
                    continue  # in a comment, a string, a label
                node = path[-2]
                call = node.named_children[0] if node.named_children else None
                if call is None or call.type != "call_expression":
                    continue
                func = innermost_function(path, 2)
                spawner = facts.scope_at(ctx, func) if func is not None else None
                if spawner is not None:
                    cache.append(GoStart(node, call, spawner, gofile))
    return cache


def resolve_call(ctx, scope: Scope, call) -> Scope | None:
    """The body a call runs when it is a literal, a function of the package, a local variable bound
    to a literal, or a method of the package (by receiver type; by a name unique in the package)."""
    fn = call.child_by_field_name("function")
    if fn is None:
        return None
    pkg = ctx.package
    if fn.type == "parenthesized_expression" and fn.named_children:
        fn = fn.named_children[0]
    if fn.type == "func_literal":
        return facts.scope_at(ctx, fn)
    if fn.type == "identifier":
        name = text(fn)
        lit = _local_literal(scope, name, call)
        if lit is not None:
            return facts.scope_at(ctx, lit)
        f = pkg.functions.get(name)
        return facts.scope_at(ctx, f.node) if f is not None else None
    if fn.type == "selector_expression":
        operand = fn.child_by_field_name("operand")
        method = text(fn.child_by_field_name("field"))
        if operand is None:
            return None
        if operand.type == "identifier" and scope.file.import_path(text(operand)) is not None \
                and text(operand) not in facts.local_types(ctx, scope):
            return None  # another package's function
        rtype = facts.receiver_type(ctx, scope, operand)
        if rtype:
            base = rtype.lstrip("*")
            if "." in base or "[" in base:
                return None  # a type of another package, or not a named type
            m = pkg.method(base, method)
        else:
            m = pkg.method("", method)
        return facts.scope_at(ctx, m.node) if m is not None else None
    return None


def _local_literal(scope: Scope, name: str, before):
    """`worker := func() {...}` in scope (or an enclosing one) before `before`: the literal."""
    s = scope
    needle = name.encode()
    while s is not None:
        body = s.body
        if body is not None:
            found = None
            data = s.file.source.data
            uses = word_spans(data, needle, body.start_byte, before.start_byte)
            for path in paths_at(body, uses):
                if len(path) < 4 or path[-1].type != "identifier" or path[-2].type != "expression_list" \
                        or any(n.type == "func_literal" for n in path[1:-1]):
                    continue
                n = path[-3]
                if n.type not in ("short_var_declaration", "assignment_statement"):
                    continue
                left, right = n.child_by_field_name("left"), n.child_by_field_name("right")
                if left is None or right is None or left != path[-2]:
                    continue
                for lhs, rhs in zip(left.named_children, right.named_children):
                    if lhs == path[-1] and rhs.type == "func_literal":
                        found = rhs
            if found is not None:
                return found
        s = s.parent
    return None


# ------------------------------------------------------------------------------------------ loops

@dataclass
class Op:
    """An operation a goroutine can wait in.

    wake: how it ends when the work stops coming:
      'stop'   - a select arm or a receive on a stop signal (ctx.Done(), quit, Quit()...), or a call
                 given a context: it ends at shutdown;
      'close'  - its result decides an exit (`v, ok := <-ch; if !ok { return }`, a sentinel value,
                 `if err := x.Wait(); err != nil { return }`): it ends when the channel closes;
      'timer'  - a select with a time.After/ticker arm: it wakes up periodically;
      'none'   - nothing wakes it but the work it waits for.
    """

    node: object
    kind: str  # 'recv' | 'send' | 'select' | 'call'
    wake: str
    what: str  # `<-ch`, `ch <- v`, `select`, `x.Wait()`
    signal: str = ""  # for 'stop': the way out (`<-quit`, `<-ctx.Done()`)
    named: bool = False  # the way out is a channel named like a stop signal (not just an arm that returns)


@dataclass
class Loop:
    node: object  # for_statement
    scope: Scope
    exits: list = field(default_factory=list)  # return / break out / goto / terminator nodes
    ops: list = field(default_factory=list)  # Op
    bare_sends: list = field(default_factory=list)  # send statements outside any select

    @property
    def stop_signal(self) -> str:
        """The first named stop signal the loop selects on (`<-quit`, `<-ctx.Done()`), or ""."""
        return next((op.signal for op in self.ops if op.wake == "stop" and op.named), "")

    @property
    def stop_aware(self) -> bool:
        """The loop has a termination protocol: a stop signal, or an exit decided by what it receives."""
        return any(op.wake in ("stop", "close") for op in self.ops)

    @property
    def blocked_forever(self) -> list:
        return [op for op in self.ops if op.wake == "none"]


def is_unbounded(loop, scope_body=None) -> bool:
    """`for {}`, `for ;; {}`, `for true {}`, or `for running {}` where nothing in the function assigns
    `running` after declaring it. Loops with a clause, a range, or a condition that calls or reads
    fields are bounded (they poll something that changes)."""
    body = loop.child_by_field_name("body")
    clause = None
    for c in loop.named_children:
        if c == body:
            continue
        clause = c
    if clause is None:
        return True
    if clause.type == "range_clause":
        return False
    if clause.type == "for_clause":
        if any(clause.child_by_field_name(f) is not None for f in ("condition", "update")):
            return False
        return True
    # a condition expression
    idents = []
    for n in walk(clause):
        if n.type in ("call_expression", "selector_expression", "index_expression"):
            return False
        if n.type == "identifier":
            idents.append(text(n))
    if not idents:
        return text(clause).strip("() ") == "true"
    names = set(idents) - {"true", "false", "nil"}
    if not names or body is None:
        return not names
    for n in walk(scope_body if scope_body is not None else body):  # closures included: they may set it
        if n.type in ("assignment_statement", "inc_statement", "dec_statement"):
            left = n.child_by_field_name("left") or (n.named_children[0] if n.named_children else None)
            if left is not None and any(text(x) in names for x in walk(left) if x.type == "identifier"):
                return False
        elif n.type == "unary_expression" and text(n).startswith("&"):
            if any(text(x) in names for x in walk(n) if x.type == "identifier"):
                return False
    return True


def forever_loops(ctx, scope: Scope, names: Names) -> list[Loop]:
    """The outermost unbounded loops of scope's own body (not those of nested literals)."""
    body = scope.body
    if body is None:
        return []
    out = []
    stack = [body]
    while stack:
        n = stack.pop()
        if n.type == "func_literal":
            continue
        if n.type == "for_statement" and is_unbounded(n, body):
            out.append(_loop_facts(ctx, scope, n, names))
            continue  # inner loops are part of this one
        stack.extend(reversed(n.children))
    return out


def _labels_of(node, func) -> set:
    """Labels naming node or any of its ancestors inside func (a `break L` to any of them leaves node)."""
    if func is None:
        return set()
    out = set()
    for a in ancestors_within(node, func):
        if a.type == "labeled_statement":
            lab = a.child_by_field_name("label")
            if lab is not None:
                out.add(text(lab))
    return out


def _break_leaves(brk, loop, labels) -> bool:
    lab = next((c for c in brk.named_children if c.type == "label_name"), None)
    if lab is not None:
        return text(lab) in labels
    for a in ancestors_within(brk, loop):
        if a.type in _BREAK_TARGETS:
            return False  # a switch, select or inner loop catches it first
    return True


def loop_exits(gofile, loop, func=None) -> list:
    """return, goto, terminators and breaks that leave loop (func: the function around it, for labels)."""
    body = loop.child_by_field_name("body")
    out = []
    if body is None:
        return out
    labels = None
    for n in walk(body, prune=_prune_literals):
        t = n.type
        if t == "return_statement" or t == "goto_statement":
            out.append(n)
        elif t == "break_statement":
            if labels is None:
                labels = _labels_of(loop, func)
            if _break_leaves(n, loop, labels):
                out.append(n)
        elif t == "call_expression" and facts.is_terminator(gofile, n):
            out.append(n)
    return out


def channel_kind(expr, names: Names) -> str:
    """'stop', 'timer' or 'work' for the channel operand of a receive."""
    e = expr
    while e is not None and e.type == "parenthesized_expression" and e.named_children:
        e = e.named_children[0]
    if e is None:
        return "work"
    if e.type == "call_expression":
        fn = e.child_by_field_name("function")
        name = ""
        if fn is not None and fn.type == "selector_expression":
            name = text(fn.child_by_field_name("field"))
        elif fn is not None and fn.type == "identifier":
            name = text(fn)
        if name in ("After", "Tick", "NewTimer", "NewTicker") or names.is_timer_name(name):
            return "timer"
        if name == "C":
            return "timer"
        if names.is_stop_name(name):
            return "stop"
        return "work"
    if e.type == "selector_expression":
        name = text(e.child_by_field_name("field"))
        if name == "C" or names.is_timer_name(name):
            return "timer"
        if names.is_stop_name(name):
            return "stop"
        return "work"
    if e.type == "identifier":
        name = text(e)
        if names.is_timer_name(name):
            return "timer"
        if names.is_stop_name(name):
            return "stop"
    return "work"


def _result_names(node) -> set:
    """Identifiers a receive or call result is bound to (`v, ok := <-ch`, `x = w.Wait()`)."""
    p = node.parent
    if p is not None and p.type == "expression_list":
        p = p.parent
    if p is None:
        return set()
    if p.type in ("short_var_declaration", "assignment_statement", "receive_statement"):
        left = p.child_by_field_name("left")
        if left is not None:
            return {text(x) for x in left.named_children if x.type == "identifier" and text(x) != "_"}
    if p.type == "var_spec":
        return {text(x) for x in p.children_by_field_name("name") if text(x) != "_"}
    return set()


def _guards_exit(loop, names: set, exits: list, op_node) -> bool:
    """An exit of the loop depends on the operation's result: a condition (if, switch, case)
    around it reads one of names, or the operation sits in that condition itself."""
    for ex in exits:
        for n in ancestors_within(ex, loop):
            if n.type == "if_statement":
                for f in ("condition", "initializer"):
                    c = n.child_by_field_name(f)
                    if c is None:
                        continue
                    if _contains(c, op_node) or (names and _mentions(c, names)):
                        return True
            elif n.type in ("expression_switch_statement", "type_switch_statement"):
                for f in ("value", "initializer"):
                    c = n.child_by_field_name(f)
                    if c is not None and (_contains(c, op_node) or (names and _mentions(c, names))):
                        return True
            elif n.type == "expression_case" and names:
                c = n.child_by_field_name("value")
                if c is not None and _mentions(c, names):
                    return True
    return False


def _contains(outer, inner) -> bool:
    return inner is not None and outer.start_byte <= inner.start_byte and inner.end_byte <= outer.end_byte


def _mentions(node, names: set) -> bool:
    return any(n.type == "identifier" and text(n) in names for n in walk(node))


def _context_arg(ctx, scope: Scope, args) -> bool:
    if args is None:
        return False
    types = facts.local_types(ctx, scope)
    for a in args.named_children:
        t = a.type
        if t == "identifier":
            name = text(a)
            if types.get(name) in _CONTEXT_TYPES or "ctx" in name.lower() or name.lower().endswith("context"):
                return True
        elif t == "selector_expression":
            name = text(a.child_by_field_name("field")).lower()
            if "ctx" in name or name.endswith("context"):
                return True
        elif t == "call_expression":
            fn = a.child_by_field_name("function")
            if fn is not None and text(fn).split(".")[-1] in ("Context", "WithTimeout", "WithDeadline",
                                                                "WithCancel"):
                return True
    return False


def _loop_facts(ctx, scope: Scope, loop, names: Names) -> Loop:
    gofile = scope.file
    exits = loop_exits(gofile, loop, scope.node)
    out = Loop(loop, scope, exits)
    body = loop.child_by_field_name("body")
    local_chans = frozenset(channel_makes(ctx, scope))
    in_select = set()
    for n in walk(body, prune=_prune_literals):
        t = n.type
        if t == "select_statement":
            op = _select_op(n, loop, exits, names, local_chans)
            if op is not None and (op.wake == "stop" or not on_exit_path(n, loop, exits)):
                out.ops.append(op)
            for case in n.named_children:
                comm = case.child_by_field_name("communication") if case.type == "communication_case" else None
                if comm is not None:
                    in_select.add(comm.id)
                    for x in walk(comm):
                        in_select.add(x.id)
        elif t == "unary_expression" and n.id not in in_select:
            op_tok = n.child_by_field_name("operator")
            if op_tok is None or text(op_tok) != "<-":
                continue
            chan = n.child_by_field_name("operand")
            kind = channel_kind(chan, names)
            what = f"<-{text(chan)}"
            if kind == "stop":
                out.ops.append(Op(n, "recv", "stop", what, what, True))
            elif kind == "timer":
                continue  # sleeps: it always returns
            elif is_response_channel(chan, local_chans, names) or on_exit_path(n, loop, exits):
                continue  # a reply to something this function asked for, or a last wait on the way out
            else:
                rn = _result_names(n)
                wake = "close" if _guards_exit(loop, rn, exits, n) else "none"
                out.ops.append(Op(n, "recv", wake, what))
        elif t == "send_statement" and n.id not in in_select:
            chan = n.child_by_field_name("channel")
            if chan is not None and text(chan) in local_chans:
                continue
            out.bare_sends.append(n)
            if not exits:
                # a send blocks until someone receives; in a loop that has exits (I/O errors, a poll),
                # the receiver is the goroutine's own consumer and is trusted to drain it
                out.ops.append(Op(n, "send", "none", f"{text(chan)} <- ..."))
        elif t == "call_expression":
            op = _call_op(ctx, scope, n, loop, exits, names)
            if op is not None and not on_exit_path(n, loop, exits):
                out.ops.append(op)
    return out


def is_response_channel(chan, local_chans, names: Names) -> bool:
    """A channel made by the function itself (a reply it waits for), or one a call returns for this
    wait only (`<-tab.refresh()`), unless the call is named like a blocking wait (`NextWaitChan()`)."""
    e = chan
    while e is not None and e.type == "parenthesized_expression" and e.named_children:
        e = e.named_children[0]
    if e is None:
        return False
    if e.type == "identifier":
        return text(e) in local_chans
    if e.type == "call_expression":
        fn = e.child_by_field_name("function")
        name = text(fn.child_by_field_name("field")) if fn is not None and fn.type == "selector_expression" \
            else text(fn) if fn is not None else ""
        base = re.sub(r"(Chan|Ch|C)$", "", name)
        return not names.is_blocking_method(base)
    return False


def on_exit_path(node, loop, exits) -> bool:
    """node's statement is followed, in the same statement list, by one of the loop's exits: a final
    wait on the way out (`task.Kill(); <-statusC; return`), not a wait for work."""
    chain = ancestors_within(node, loop)
    stmt, lst = node, None
    for a in chain:
        if a.type == "statement_list":
            lst = a
            break
        stmt = a
    if lst is None:
        return False
    exit_ids = {e.id for e in exits}
    seen = False
    for sib in lst.named_children:
        if sib == stmt:
            seen = True
            continue
        if not seen:
            continue
        if sib.id in exit_ids or (sib.type == "expression_statement" and sib.named_children
                                  and sib.named_children[0].id in exit_ids):
            return True
    return False


def _select_op(sel, loop, exits, names: Names, local_chans=frozenset()) -> Op | None:
    wake = "none"
    arms = work = 0
    if any(c.type == "default_case" for c in sel.named_children):
        return None  # never blocks
    for case in sel.named_children:
        if case.type != "communication_case":
            continue
        arms += 1
        comm = case.child_by_field_name("communication")
        if comm is None:
            continue
        if comm.type == "receive_statement":
            right = comm.child_by_field_name("right")
            chan = right.child_by_field_name("operand") if right is not None and right.type == "unary_expression" else right
            kind = channel_kind(chan, names)
            signal = f"<-{text(chan)}"
            if kind == "stop":
                return Op(sel, "select", "stop", "select", signal, True)
            if kind == "timer":
                if any(_top_level_in(e, case) for e in exits if _contains(case, e)):
                    return Op(sel, "select", "stop", "select", signal)  # an idle timeout ends it
                wake = "timer" if wake == "none" else wake
                continue
            left = comm.child_by_field_name("left")
            rn = {text(x) for x in left.named_children if x.type == "identifier" and text(x) != "_"} if left else set()
            arm_exits = [e for e in exits if _contains(case, e)]
            if any(_top_level_in(e, case) for e in arm_exits):
                return Op(sel, "select", "stop", "select", signal)  # `case <-sub.Err(): return`: a way out
            state = _assigned_at_top(case)
            if state and _guards_exit(loop, state, [e for e in exits if not _contains(case, e)], None):
                return Op(sel, "select", "stop", "select", signal)  # `case <-x: done = true` ... `if done { return }`
            if rn and _guards_exit(loop, rn, exits, None):
                wake = "close"
            elif not is_response_channel(chan, local_chans, names):
                work += 1
        else:
            work += 1  # a send arm is work
    if arms == 0:
        return None  # `select {}`: parks on purpose
    if wake == "none" and not work:
        return None  # waits only for replies it asked for
    return Op(sel, "select", wake, "select")


def _assigned_at_top(case) -> set:
    """Variables the arm's own statements set (`done = true`, `running = false`)."""
    out = set()
    lst = next((c for c in case.named_children if c.type == "statement_list"), None)
    for stmt in lst.named_children if lst is not None else ():
        if stmt.type == "assignment_statement":
            left = stmt.child_by_field_name("left")
            if left is not None:
                out |= {text(x) for x in left.named_children if x.type == "identifier" and text(x) != "_"}
    return out


def _top_level_in(exit_node, case) -> bool:
    """The exit is one of the arm's own statements (not under an if or a nested statement)."""
    stmt = exit_node
    if stmt.type == "call_expression":
        stmt = stmt.parent
        if stmt is None or stmt.type != "expression_statement":
            return False
    p = stmt.parent
    return p is not None and p.type == "statement_list" and p.parent is not None and p.parent == case


def _call_op(ctx, scope: Scope, call, loop, exits, names: Names) -> Op | None:
    fn = call.child_by_field_name("function")
    if fn is None or fn.type != "selector_expression":
        return None
    method = text(fn.child_by_field_name("field"))
    if not names.is_blocking_method(method):
        return None
    p = call.parent
    if p is not None and p.type == "unary_expression":
        return None  # `<-x.WaitChan()`: the receive is the operation
    operand = fn.child_by_field_name("operand")
    if operand is not None and operand.type == "identifier" and scope.file.import_path(text(operand)) is not None:
        return None  # a package function (`retry.Wait(...)`)
    rtype = facts.receiver_type(ctx, scope, operand) if operand is not None else None
    if rtype and any(fnmatchcase(rtype, p) for p in names.non_blocking_receivers):
        return None
    last = _last_name(operand)
    if last and names.is_non_blocking_receiver_name(last):
        return None  # `cmd.Wait()`, `proc.Wait()`: returns when the process ends
    if method == "Wait" and _feeds_wait(loop, operand):
        return None  # a WaitGroup the loop itself Adds to: it waits for this round's work
    what = f"{text(fn)}()"
    args = call.child_by_field_name("arguments")
    if method == "Wait" and exits and (rtype in ("*sync.Cond", "sync.Cond")
                                       or (rtype is None and (args is None or not args.named_children))):
        # sync.Cond (or a bare Wait() that may be one): whoever closes Broadcasts, and the loop
        # re-checks its exit condition after every wake-up
        return Op(call, "call", "close", what)
    if _context_arg(ctx, scope, call.child_by_field_name("arguments")):
        return Op(call, "call", "stop", what)
    rn = _result_names(call)
    wake = "close" if _guards_exit(loop, rn, exits, call) else "none"
    return Op(call, "call", wake, what)


def _last_name(expr) -> str:
    if expr is None:
        return ""
    if expr.type == "identifier":
        return text(expr)
    if expr.type == "selector_expression":
        return text(expr.child_by_field_name("field"))
    return ""


def _feeds_wait(loop, operand) -> bool:
    if operand is None:
        return False
    recv = text(operand)
    body = loop.child_by_field_name("body")
    for n in walk(body):
        if n.type == "go_statement":
            return True
        if n.type == "selector_expression" and text(n.child_by_field_name("field")) in ("Add", "Go") \
                and text(n.child_by_field_name("operand")) == recv:
            return True
    return False


# ------------------------------------------------------------------------------------------ channels

@dataclass
class ChanMake:
    name: str  # `ch` or `s.results`
    node: object  # the make call
    capacity: str | None  # None when absent
    decl: object  # the statement

    @property
    def unbuffered(self) -> bool:
        return self.capacity is None or self.capacity.strip() == "0"


_MAKES_A_CHANNEL = re.compile(rb"make\(\s*(?:<-\s*)?chan\b")


def _file_makes(ctx, gofile) -> dict:
    """Every `make(chan ...)` of one file of the package, found from its text once per unit: by
    enclosing function node id -> name -> [ChanMake] ("by_func"), and by struct field name ->
    [capacity] ("fields"). A file that makes no channel is not parsed for it."""
    made = ctx.shared.setdefault("go.goroutines.makes", {})
    key = str(gofile.source.path)
    cache = made.get(key)
    if cache is not None:
        return cache
    by_func: dict = {}
    fields: dict = {}
    cache = made[key] = {"by_func": by_func, "fields": fields}
    data = gofile.source.data
    if _MAKES_A_CHANNEL.search(data) is None:
        return cache
    root = gofile.source.root
    local_names = set()
    makes = ((m.start(), m.start() + 4) for m in _MAKES_A_CHANNEL.finditer(data))
    for path in paths_at(root, makes):
        if len(path) < 4 or path[-1].type != "identifier" or path[-2].type != "call_expression":
            continue  # in a comment or a string
        mk, p = path[-2], path[-3]
        cap = _make_chan(mk)
        if cap is False:
            continue
        if p.type == "literal_element" and path[-4].type == "keyed_element" \
                and path[-4].named_children[0] != p:
            fields.setdefault(_element_key(path[-4]), []).append(cap)
            continue
        if p.type != "expression_list":
            continue
        stmt = path[-4]
        if stmt.type == "var_spec":
            lhs = stmt.children_by_field_name("name")
        elif stmt.type in ("short_var_declaration", "assignment_statement") \
                and stmt.child_by_field_name("right") == p:
            left = stmt.child_by_field_name("left")
            lhs = left.named_children if left is not None else []
        else:
            continue
        idx = next((k for k, c in enumerate(p.named_children) if c == mk), -1)
        if idx < 0 or idx >= len(lhs):
            continue
        target = lhs[idx]
        func = innermost_function(path, 2)
        if func is not None:
            facts.scope_at(ctx, func)  # so that facts.scope_by_id(ctx, func.id) knows it
            by_func.setdefault(func.id, {}).setdefault(text(target), []).append(
                ChanMake(text(target), mk, cap, stmt))
            if target.type == "identifier":
                local_names.add(text(target))
        if target.type == "selector_expression":
            fields.setdefault(text(target.child_by_field_name("field")), []).append(cap)
    # by_func is complete (and cached) here: _local_make, called from this, looks a local up in it
    for _pos, name, cap in sorted(_fields_from_locals(ctx, gofile, local_names)):
        fields.setdefault(name, []).append(cap)
    return cache


def target_channel_makes(ctx):
    """(function node id, {name: [ChanMake]}) for the functions of the files being reported on."""
    for gofile in ctx.package.files:
        if gofile.source.is_target:
            yield from _file_makes(ctx, gofile)["by_func"].items()


def _fields_from_locals(ctx, gofile, names):
    """(offset, field, capacity) where a local channel made in this file is stored in a field:
    `&S{ch: ch}`, `s.ch = ch`; found from the places the names occur."""
    data, root = gofile.source.data, gofile.source.root
    for name in names:
        uses = word_spans(data, name.encode())
        for path in paths_at(root, uses):
            if len(path) < 4 or path[-1].type != "identifier":
                continue
            value, holder, stmt = path[-1], path[-2], path[-3]
            key = None
            if holder.type == "literal_element" and stmt.type == "keyed_element":
                kids = stmt.named_children
                if len(kids) >= 2 and kids[1] == holder and kids[0].type == "literal_element":
                    key = _element_key(stmt)
            elif holder.type == "expression_list" and stmt.type == "assignment_statement" \
                    and stmt.child_by_field_name("right") == holder and holder.named_child_count == 1:
                left = stmt.child_by_field_name("left")
                target = left.named_children[0] if left is not None and left.named_child_count == 1 else None
                if target is not None and target.type == "selector_expression":
                    key = text(target.child_by_field_name("field"))
            if not key:
                continue
            cap = _local_make(ctx, gofile, value)
            if cap is not False:
                yield value.start_byte, key, cap


def _element_key(keyed):
    """The key of a keyed element of a composite literal, as text (`ch` in `{ch: v}`)."""
    key = keyed.named_children[0]
    return text(key.named_children[0] if key.type == "literal_element" and key.named_children else key)


def channel_makes(ctx, scope: Scope) -> dict[str, list[ChanMake]]:
    """`ch := make(chan T[, n])`, `ch = make(...)`, `var ch = make(...)`, `s.ch = make(...)` in scope's
    own body (not in nested literals), by the name they are bound to."""
    return _file_makes(ctx, scope.file)["by_func"].get(scope.node.id, {})


def _make_chan(value):
    """None (no capacity) or the capacity text for `make(chan T[, n])`; False for anything else."""
    if value is None or value.type != "call_expression":
        return False
    fn = value.child_by_field_name("function")
    if fn is None or text(fn) != "make":
        return False
    args = value.child_by_field_name("arguments")
    if args is None or not args.named_children or args.named_children[0].type != "channel_type":
        return False
    rest = args.named_children[1:]
    return text(rest[0]) if rest else None


def field_channel_makes(ctx, name: str) -> list | None:
    """The capacities of the channels the package makes for a struct field (`s.ch = make(...)`,
    `&S{ch: make(...)}`, `&S{ch: ch}` with `ch := make(...)`), a capacity None when absent; None
    when the package makes none for it. Only files that name the field are looked at."""
    word = name.encode()
    caps = []
    for gofile in ctx.package.files:
        if next(word_offsets(gofile.source.data, word), None) is not None:
            caps += _file_makes(ctx, gofile)["fields"].get(name, [])
    return caps or None


def _local_make(ctx, gofile, ident):
    """The capacity of the make a local variable was last bound to before ident, or False."""
    func = loops.enclosing_function(ident, gofile.source.root)
    if func is None:
        return False
    mks = _file_makes(ctx, gofile)["by_func"].get(func.id, {}).get(text(ident), [])
    before = [m for m in mks if m.node.start_byte < ident.start_byte]
    return before[-1].capacity if before else False


def channel_protocol(ctx) -> set[tuple[str, str]]:
    """(request field, reply field) pairs: a function of the package sends on `.req` and then
    receives from `.reply` (`case srv.peerOp <- fn: <-srv.peerOpDone`), so a loop that receives a
    request and sends on the reply channel is answering someone who waits for it."""
    cache = ctx.shared.get("go.goroutines.protocol")
    if cache is not None:
        return cache
    cache = ctx.shared["go.goroutines.protocol"] = set()
    by_scope: dict = {}  # function node id -> ([(offset, sent field)], [(offset, received field)])
    for gf in ctx.package.files:
        data = gf.source.data
        if b"<-" not in data:
            continue
        for path in paths_at(gf.source.root, needle_spans(data, b"<-")):
            if len(path) < 3 or path[-1].type != "<-":
                continue  # in a comment, a string
            op = path[-2]
            if op.type == "send_statement":
                ch, side = op.child_by_field_name("channel"), 0
            elif op.type == "unary_expression":
                ch, side = op.child_by_field_name("operand"), 1
            else:
                continue  # a channel type
            func = innermost_function(path, 2)
            if func is None or ch is None or ch.type != "selector_expression":
                continue
            lists = by_scope.setdefault(func.id, ([], []))
            lists[side].append((op.start_byte, text(ch.child_by_field_name("field"))))
    for sent, received in by_scope.values():
        for sb, sf in sent:
            for rb, rf in received:
                if rb > sb:
                    cache.add((sf, rf))
    return cache


def signal_channels(ctx) -> set[str]:
    """Names (variables, fields) of the channels the package registers with os/signal.Notify."""
    cache = ctx.shared.get("go.goroutines.signals")
    if cache is not None:
        return cache
    cache = ctx.shared["go.goroutines.signals"] = set()
    for gofile in ctx.package.files:
        if b"signal.Notify" not in gofile.source.data and b".Notify(" not in gofile.source.data:
            continue
        for _, caps in parsing.matches("go", "(call_expression function: (selector_expression) @fn "
                                             "arguments: (argument_list . (_) @ch)) @call", gofile.source.root):
            fn = caps["fn"][0]
            pkg = text(fn.child_by_field_name("operand"))
            if text(fn.child_by_field_name("field")) == "Notify" and gofile.import_path(pkg) == "os/signal":
                ch = caps["ch"][0]
                cache.add(text(ch.child_by_field_name("field")) if ch.type == "selector_expression" else text(ch))
    return cache


def handles_signals(ctx, loop: Loop) -> bool:
    """The loop receives from a channel registered with signal.Notify: a process-long signal handler."""
    sigs = signal_channels(ctx)
    if not sigs:
        return False
    for n in walk(loop.node, prune=_prune_literals):
        if n.type == "unary_expression":
            op = n.child_by_field_name("operator")
            ch = n.child_by_field_name("operand")
            if op is not None and text(op) == "<-" and ch is not None:
                name = text(ch.child_by_field_name("field")) if ch.type == "selector_expression" else text(ch)
                if name in sigs:
                    return True
    return False
