"""CL103 blocking-goroutine: a goroutine that can block forever.

Two shapes:
1. The goroutine runs a loop that never ends on its own and waits in a bare channel operation, a
   select whose arms are all work, or a call that blocks by contract (Wait, FrontWait, NextWait),
   with no stop signal and no exit decided by what it receives. An error when it is started per
   peer/connection/request/item, a note when started elsewhere, nothing for a background loop started
   once (main, New, Start).
2. The goroutine sends on an unbuffered channel that its parent reads only in a select that can
   leave through a timeout, default or stop arm (a warning).
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

from closelint import parsing
from closelint.golang import facts, goroutines as gr, loops
from closelint.golang.package import specs_of
from closelint.treeutil import paths_at, text, walk, word_spans

TOKENS = (b"go ", b"go\t")

_MAX_FOLLOW = 2  # calls followed from a goroutine's body to the function that holds its loop


def check(ctx):
    opts = ctx.options
    names = gr.Names(
        stop_signals=opts.get("stop-signals", ()),
        timer_channels=opts.get("timer-channels", ()),
        blocking_methods=opts.get("blocking-methods", ()),
        non_blocking_methods=opts.get("non-blocking-methods", ()),
        non_blocking_receivers=opts.get("non-blocking-receivers", ()),
        non_blocking_receiver_names=opts.get("non-blocking-receiver-names", ()),
    )
    messages = ctx.catalogs.get("messages", {})
    include_tests = opts.get("include-test-functions", False)
    for start in gr.go_statements(ctx):
        src = start.file.source
        if not src.is_target:
            continue
        if not include_tests and src.path.name.endswith("_test.go") and _in_test_function(start) \
                and (start.function is None or start.function.type == "func_literal"):
            continue  # a test's own goroutine literal: scaffolding (a named function it starts is code)
        finding = _blocking_loop(ctx, start, names, opts, messages)
        if finding is None:
            finding = _unbuffered_send(ctx, start, names, messages)
        if finding is None:
            finding = _field_send(ctx, start, names, messages)
        if finding is not None:
            yield finding
    yield from _sends_nobody_can_receive(ctx, messages, include_tests)


_TEST_FUNC = re.compile(r"^(Test|Benchmark|Fuzz|Example)")
_TESTING_TYPES = ("*testing.T", "*testing.B", "*testing.F", "testing.TB")


def _in_test_function(start) -> bool:
    """The go statement belongs to a test, benchmark or helper (a function taking *testing.T...):
    scaffolding whose goroutines end with the test binary, not code under test."""
    s = start.spawner
    while s is not None:
        if any(p.type in _TESTING_TYPES for p in s.params):
            return True
        if s.function is not None and not s.function.receiver and _TEST_FUNC.match(s.function.name):
            return True
        s = s.parent
    return False


_FAILURE_CALL = re.compile(r"^(t|b|f|tb|s|suite|require|assert|c)\.(Fatal|Fatalf|Error|Errorf|Fail|FailNow|"
                           r"Skip|Skipf|SkipNow|Log|Logf|Nil|NoError|Equal|True|False|Fail\w*)$")


def _fails_test(node) -> bool:
    """A test failure path: t.Fatal, t.Error, require.X, panic... (nothing after it matters)."""
    for n in walk(node, prune=lambda x: x.type == "func_literal"):
        if n.type == "call_expression":
            fn = n.child_by_field_name("function")
            name = text(fn) if fn is not None else ""
            if name == "panic" or _FAILURE_CALL.match(name):
                return True
    return False


# ------------------------------------------------------------------------------------------ shape 1

def _targets(ctx, start):
    """The scope the go statement runs, and those it reaches through plain calls at its top level
    (`go func() { defer wg.Done(); r.loop(p) }()`), up to _MAX_FOLLOW calls deep."""
    first = gr.resolve_call(ctx, start.spawner, start.call)
    if first is None:
        return []
    out, frontier, seen = [first], [first], {first.node.id}
    for _ in range(_MAX_FOLLOW):
        nxt = []
        for scope in frontier:
            body = scope.body
            if body is None:
                continue
            for stmt in _top_statements(body):
                call = _statement_call(stmt)
                if call is None:
                    continue
                target = gr.resolve_call(ctx, scope, call)
                if target is not None and target.node.id not in seen:
                    seen.add(target.node.id)
                    out.append(target)
                    nxt.append(target)
        frontier = nxt
    return out


def _top_statements(block):
    lst = next((c for c in block.named_children if c.type == "statement_list"), None)
    return lst.named_children if lst is not None else []


def _statement_call(stmt):
    if stmt.type == "expression_statement" and stmt.named_children:
        e = stmt.named_children[0]
        return e if e.type == "call_expression" else None
    if stmt.type in ("return_statement",) and stmt.named_children:
        e = stmt.named_children[0]
        if e.type == "expression_list" and e.named_children:
            e = e.named_children[0]
        return e if e.type == "call_expression" else None
    if stmt.type in ("short_var_declaration", "assignment_statement"):
        right = stmt.child_by_field_name("right")
        if right is not None and len(right.named_children) == 1 and right.named_children[0].type == "call_expression":
            return right.named_children[0]
    return None


def _blocking_loop(ctx, start, names, opts, messages):
    targets = _targets(ctx, start)
    if not targets:
        return None
    for scope in targets:
        for loop in gr.forever_loops(ctx, scope, names):
            if loop.stop_aware:
                f = _send_ignores_stop(ctx, start, scope, loop, opts, messages)
                if f is not None:
                    return f
                continue
            if gr.handles_signals(ctx, loop):
                continue  # a signal.Notify handler lives as long as the process, by design
            blocked = loop.blocked_forever
            never_exits = not loop.exits and any(op.wake == "timer" for op in loop.ops)
            if not blocked and not never_exits:
                continue
            return _report_loop(ctx, start, scope, loop, blocked, opts, names, messages)
    return None


def _report_loop(ctx, start, scope, loop, blocked, opts, names, messages):
    kind, why, item = spawn_context(ctx, start, opts)
    if kind == "background":
        return None
    target = _target_text(start)
    fix = suggest_exit(ctx, start, item, names)
    when = f"when `{item}` goes away" if item else "once its work stops coming"
    holding = f"`{item}` and everything it references" if item else "everything it references"
    op = blocked[0] if blocked else None
    op_text = f"`{_short(op.what)}`" if op else ""
    src = start.file.source
    related = []
    if op is not None:
        related.append((scope.file.source, op.node, f"blocks here with no stop signal: {_short(op.what)}"))
    else:
        related.append((scope.file.source, loop.node, "this loop has no return or break"))
    if kind == "other":
        if op is None:
            return None
        msg = messages["note-blocks"].format(target=target, op=op_text, fix=fix)
        level = "note"
    elif op is None:
        msg = messages["loop-never-exits"].format(target=target, why=why, holding=holding, fix=fix)
        level = "error"
    elif loop.exits:
        exit_line = loop.exits[0].start_point[0] + 1
        msg = messages["loop-blocks-polled"].format(target=target, why=why, op=op_text, exit_line=exit_line,
                                                    when=when, holding=holding, fix=fix)
        related.append((scope.file.source, loop.exits[0], "the only way out, reached only between waits"))
        level = "error"
    else:
        msg = messages["loop-blocks"].format(target=target, why=why, op=op_text, when=when,
                                             holding=holding, fix=fix)
        level = "error"
    return ctx.finding(src, start.node, msg, level=level, related=related, function=start.spawner.name,
                       start=start.node.start_point, end=start.header_end())


def _send_ignores_stop(ctx, start, scope, loop, opts, messages):
    """A loop that stops on a signal, with a bare send that does not watch it."""
    signal = loop.stop_signal
    if not signal:
        return None
    for send in loop.bare_sends:
        chan = send.child_by_field_name("channel")
        if chan is None or _buffered(ctx, chan, scope, start) or _is_reply(ctx, send, chan, loop) \
                or _optional(send, chan, scope):
            continue
        kind, why, item = spawn_context(ctx, start, opts)
        send_text = _short(text(chan)) + " <- ..."
        msg = messages["loop-send-ignores-stop"].format(target=_target_text(start), signal=_short(signal),
                                                        send=send_text)
        related = [(scope.file.source, send, f"blocks here without watching `{_short(signal)}`")]
        level = "warning" if kind == "per-item" else "note"
        return ctx.finding(start.file.source, start.node, msg, level=level, related=related,
                           function=start.spawner.name, start=start.node.start_point, end=start.header_end())
    return None


def _optional(send, chan, scope) -> bool:
    """`if s.step != nil { s.step <- x }`: an optional hook (tests), set only by whoever listens."""
    name = text(chan)
    for a in gr.between(send, scope.node):
        if a.type == "if_statement":
            cond = a.child_by_field_name("condition")
            if cond is not None and re.search(re.escape(name) + r"\s*!=\s*nil", text(cond)):
                return True
    return False


def _is_reply(ctx, send, chan, loop) -> bool:
    """The send answers a request the loop received: on a channel the request carries
    (`case req := <-reqs: req.done <- err`), or on the reply channel of a request/reply pair."""
    root = chan
    while root.type in ("selector_expression", "index_expression", "call_expression", "parenthesized_expression"):
        nxt = root.child_by_field_name("operand") or root.child_by_field_name("function") \
            or (root.named_children[0] if root.named_children else None)
        if nxt is None:
            break
        root = nxt
    if root.type == "identifier" and root != chan:
        name = text(root)
        for a in gr.ancestors_within(send, loop.node):
            if a.type == "communication_case":
                comm = a.child_by_field_name("communication")
                left = comm.child_by_field_name("left") if comm is not None and comm.type == "receive_statement" else None
                if left is not None and any(text(x) == name for x in left.named_children):
                    return True
        # bound from a receive elsewhere in the loop: `op := <-s.ops; ... op.done <- x`
        for n in walk(loop.node, prune=lambda x: x.type == "func_literal"):
            if n.type in ("short_var_declaration", "assignment_statement"):
                left, right = n.child_by_field_name("left"), n.child_by_field_name("right")
                if left is not None and right is not None and any(text(x) == name for x in left.named_children) \
                        and any(r.type == "unary_expression" and text(r).startswith("<-") for r in right.named_children):
                    return True
    if chan.type == "selector_expression":
        reply = text(chan.child_by_field_name("field"))
        pairs = gr.channel_protocol(ctx)
        for a in gr.ancestors_within(send, loop.node):
            if a.type == "communication_case":
                comm = a.child_by_field_name("communication")
                right = comm.child_by_field_name("right") if comm is not None and comm.type == "receive_statement" else None
                operand = right.child_by_field_name("operand") if right is not None and right.type == "unary_expression" else None
                if operand is not None and operand.type == "selector_expression" and \
                        (text(operand.child_by_field_name("field")), reply) in pairs:
                    return True
    return False


def _buffered(ctx, chan, scope, start) -> bool:
    """The channel is made with a buffer (or not made where we can see): a send on it may not block."""
    if chan.type == "identifier":
        name = text(chan)
        s = scope
        while s is not None:
            mk = gr.channel_makes(ctx, s).get(name)
            if mk:
                return not all(m.unbuffered for m in mk)
            s = s.parent
        # a parameter of the goroutine's function: what the go statement passed
        target = gr.resolve_call(ctx, start.spawner, start.call)
        if target is not None and target.node == scope.node:
            for p, a in zip(scope.params, start.args):
                if p.name == name and a.type == "identifier":
                    s = start.spawner
                    while s is not None:
                        mk = gr.channel_makes(ctx, s).get(text(a))
                        if mk:
                            return not all(m.unbuffered for m in mk)
                        s = s.parent
        return True  # unknown origin: do not guess
    if chan.type == "selector_expression":
        caps = gr.field_channel_makes(ctx, text(chan.child_by_field_name("field")))
        return not caps or not all(c is None or c.strip() == "0" for c in caps)
    return True


def _short(s: str, limit: int = 60) -> str:
    s = re.sub(r"\s+", " ", s)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _target_text(start) -> str:
    fn = start.function
    if fn is not None and fn.type == "func_literal":
        return "func literal"
    return _short(text(start.call))


def _last_word(name: str) -> str:
    words = gr.camel_words(name)
    return words[-1] if words else ""


def _type_word(type_text: str) -> str:
    t = type_text.lstrip("*").lstrip(".")
    if t.startswith(("[]", "map[", "chan", "<-", "func")):
        return ""
    t = t.split("[")[0]
    return _last_word(t.rsplit(".", 1)[-1])


def spawn_context(ctx, start, opts):
    """('per-item' | 'background' | 'other', why, item value name).

    Per item: the go statement sits in a loop that receives or accepts items, or ranges over them
    outside a constructor; or a function around it takes a peer/conn/request/... parameter; or it is
    a request handler. Background: started by main, init, New*, Start*, Run... with nothing per item.
    """
    per_item = {w.lower() for w in opts.get("per-item", ())}
    background = opts.get("background-functions", ())
    chain = []
    s = start.spawner
    while s is not None:
        chain.append(s)
        s = s.parent
    decl = chain[-1]
    decl_name = decl.function.name if decl.function is not None else ""
    is_background = any(fnmatchcase(decl_name, p) for p in background)
    for s in chain:
        for p in s.params:
            if not p.name or p.name == "_":
                continue
            if _last_word(p.name) in per_item or _type_word(p.type) in per_item:
                return "per-item", f"per {_type_word(p.type) or _last_word(p.name)} (`{p.name}`)", p.name
    for s in chain:
        if s.framework:
            return "per-item", "per request (in a handler)", None
    # loops around the go statement, across the literals up to the declaration
    for n in gr.ancestors_within(start.node, decl.node):
        if n.type == "for_statement":
            k = _loop_kind(n)
            if k == "items" or (k == "range" and not is_background):
                return "per-item", "in a loop, once per item", None
    if is_background:
        return "background", "", None
    return "other", "", None


def _loop_kind(loop) -> str:
    """'items' for a loop that receives or accepts one item per round (`for {}`, `for cond`);
    'range' for a range over a collection; 'count' for a counting loop or a range over a number."""
    body = loop.child_by_field_name("body")
    clause = next((c for c in loop.named_children if c != body), None)
    if clause is None:
        return "items"
    if clause.type == "for_clause":
        return "count" if clause.child_by_field_name("update") is not None else "items"
    if clause.type == "range_clause":
        right = clause.child_by_field_name("right")
        if right is None or right.type in ("int_literal",):
            return "count"
        rt = text(right)
        if right.type in ("identifier", "selector_expression", "call_expression") and re.search(
                r"(?i)(^n$|num|count|worker|concurren|parallel|size|^len\(|threads|goroutines)", rt.split(".")[-1]):
            return "count"
        return "range"
    return "items"


def suggest_exit(ctx, start, item, names) -> str:
    """The concrete exit to add: a stop signal a value at hand has (`<-peer.Quit()`), else generic."""
    chain = []
    s = start.spawner
    while s is not None:
        chain.append(s)
        s = s.parent
    candidates = []  # (name, type)
    for s in chain:
        for p in s.params:
            if p.name and p.name != "_":
                candidates.append((p.name, p.type))
    if item:
        candidates.sort(key=lambda c: c[0] != item)
    decl = chain[-1]
    fn = decl.function
    if fn is not None and fn.receiver_name:
        candidates.append((fn.receiver_name, fn.receiver))
    known = ctx.catalogs.get("exit-signals", [])
    for name, typ in candidates:
        for row in known:
            if fnmatchcase(typ, row.get("type", "")):
                sig = row.get("signal", "").replace("{v}", name)
                return f"add a case for `{sig}` to a select around the wait and return from it"
    for name, typ in candidates:
        sig = _stop_of(ctx, name, typ, names)
        if sig:
            return f"add a case for `{sig}` to a select around the wait and return from it"
    if item:
        return f"select on a signal that fires when `{item}` goes away (its quit channel or a context's Done()) and return"
    return "select on a stop channel or a context's Done() and return"


def _stop_of(ctx, name: str, typ: str, names) -> str | None:
    pkg = ctx.package
    base = typ.lstrip("*")
    if base and "." not in base:
        for fname, ftype in pkg.struct_fields.get(base, {}).items():
            if ftype.startswith(("chan", "<-chan")) and names.is_stop_name(fname):
                return f"<-{name}.{fname}"
        for (recv, mname), m in pkg.methods.items():
            if recv == base and names.is_stop_name(mname) and m.results and \
                    m.results[0].type.startswith(("chan", "<-chan")):
                return f"<-{name}.{mname}()"
        tdef = pkg.type_defs.get(base, "")
        if tdef.startswith("interface"):
            for mm in re.finditer(r"\b([A-Z]\w*)\(\)\s*(?:<-)?chan\b", tdef):
                if names.is_stop_name(mm.group(1)):
                    return f"<-{name}.{mm.group(1)}()"
    # evidence: the package already selects on such a signal of a value with this name
    pat = re.compile(rb"<-\s*" + re.escape(name.encode()) + rb"\.([A-Za-z_]\w*)(\(\))?")
    for gf in pkg.files:
        for m in pat.finditer(gf.source.data):
            member = m.group(1).decode()
            if names.is_stop_name(member):
                return f"<-{name}.{member}{'()' if m.group(2) else ''}"
    return None


# ------------------------------------------------------------------------------------------ shape 2

def _unbuffered_send(ctx, start, names, messages):
    """The goroutine sends on an unbuffered channel made by its parent, and some path of the parent
    never receives it: the parent reads it only in selects that can leave through another arm, returns
    before its receive, or receives fewer times than goroutines send."""
    sends = _sends_of(ctx, start, names)
    if not sends:
        return None
    spawner = start.spawner
    for chan, send in sends:
        owner, mk = _made_in(ctx, spawner, chan)
        if owner is None:
            continue
        if owner.declaration.function is not None and owner.declaration.function.name == "main" \
                and not owner.declaration.function.receiver:
            continue  # when main returns, the process ends
        if len(mk) != 1 or not mk[0].unbuffered:
            continue
        senders = [st for st in _senders_by_chan(ctx, names).get(chan, ()) if _inside(st.node, owner.node)
                   and not _shadows(ctx, st, owner, chan)]
        if not any(st.node == start.node for st in senders):
            continue
        uses = _channel_uses(ctx, owner, chan, [st.node for st in senders], names)
        if uses is None:
            dropped = _returned_and_ignored(ctx, owner, chan, [st.node for st in senders])
            if dropped is not None:
                fn = owner.function
                where, ignored = dropped
                msg = messages["unbuffered-send-ignored"].format(
                    target=_target_text(start), chan=chan, func=fn.name,
                    where=f"{where.path.name}:{ignored.start_point[0] + 1}")
                related = [(start.file.source, send, "blocks here: nobody receives"),
                           (owner.file.source, mk[0].node, "made without a buffer here"),
                           (where, ignored, f"the channel `{fn.name}` returns is dropped here")]
                return ctx.finding(start.file.source, start.node, msg, level="warning", related=related,
                                   function=spawner.name, start=start.node.start_point, end=start.header_end())
            continue
        if not uses.escapes and not uses.plain:
            continue
        elem = _elem_type(mk[0].node)
        made = (owner.file.source, mk[0].node, "made without a buffer here")
        blocked = (start.file.source, send, "blocks here once the parent has stopped receiving")
        looped = any(_in_loop(st.node, owner) for st in senders)
        room = "with one slot per goroutine" if looped else f"(`make(chan {elem}, {max(len(senders), 1)})`)"
        fix = f"make the channel buffered {room} or select on a stop signal around the send"
        msg = None
        if uses.escapes and not uses.plain and not uses.waits:
            arm, escape = uses.escapes[0]
            msg = messages["unbuffered-send"].format(target=_target_text(start), chan=chan, escape=f"`{escape}`",
                                                     fix=fix)
            related = [blocked, made, (owner.file.source, arm, f"the parent can leave through `{escape}` here")]
        elif uses.plain and not uses.escapes and not uses.waits:
            first = min(uses.plain, key=lambda n: n.start_byte)
            if _exits_process_after(owner, first):
                continue  # `fmt.Println(<-errc); os.Exit(1)`: nothing outlives the process
            many = _count(senders) > 1
            early = _early_return(owner, start, first, uses.plain, many)
            if early is not None:
                msg = messages["unbuffered-send-early-return"].format(
                    target=_target_text(start), chan=chan, line=early.start_point[0] + 1, fix=fix)
                related = [blocked, made, (owner.file.source, early, "returns here without receiving")]
            elif many and start.node == senders[0].node and not any(_in_loop(r, owner) for r in uses.plain) \
                    and len(uses.plain) < _count(senders):
                n_send = "several" if any(_in_loop(st.node, owner) for st in senders) else str(_count(senders))
                times = {1: "once", 2: "twice"}.get(len(uses.plain), f"{len(uses.plain)} times")
                msg = messages["unbuffered-send-fewer-receives"].format(
                    target=_target_text(start), chan=chan, senders=n_send, receives=times, fix=fix)
                related = [blocked, made, (owner.file.source, first, "the only receive")]
                related += [(st.file.source, st.node, "another goroutine sending on it") for st in senders[1:3]]
        if msg is None:
            continue
        return ctx.finding(start.file.source, start.node, msg, level="warning", related=related,
                           function=spawner.name, start=start.node.start_point, end=start.header_end())
    return None


def _returned_and_ignored(ctx, owner, chan, goroutines):
    """A call of owner (a function or method of the package) that drops the channel owner returns,
    when returning it is the only thing owner does with it (moby#4395: `Go(f)` as a statement)."""
    fn = owner.function
    if fn is None or owner.body is None:
        return None
    returned = False
    for n in gr.identifiers(ctx, owner).get(chan, ()):
        if any(_inside(n, g) for g in goroutines):
            continue
        p = n.parent
        if p.type == "expression_list" and p.parent is not None and p.parent.type == "return_statement":
            returned = True
            continue
        if p.type == "expression_list" and p.parent is not None and p.parent.type in (
                "short_var_declaration", "var_spec") and p.parent.child_by_field_name("left") == p:
            continue
        if p.type == "var_spec":
            continue
        return None
    if not returned:
        return None
    if len(ctx.package.methods_by_name.get(fn.name, [])) + (fn.name in ctx.package.functions) != 1:
        return None  # the name is not unique: calls cannot be told apart
    for gf in ctx.package.files:
        if fn.name.encode() not in gf.source.data:
            continue
        for _, caps in parsing.matches("go", "(expression_statement (call_expression) @call)", gf.source.root):
            call = caps["call"][0]
            callee = call.child_by_field_name("function")
            if callee is None:
                continue
            name = text(callee) if callee.type == "identifier" else \
                text(callee.child_by_field_name("field")) if callee.type == "selector_expression" else ""
            if name == fn.name and bool(fn.receiver) == (callee.type == "selector_expression") \
                    and (callee.type != "selector_expression" or gf.import_path(
                        text(callee.child_by_field_name("operand"))) is None):
                return gf.source, call
    return None


def _count(senders) -> int:
    return sum(2 if any(a.type == "for_statement" for a in gr.between(st.node, st.spawner.node)) else 1
               for st in senders)


def _in_loop(node, owner) -> bool:
    return any(a.type == "for_statement" for a in _between(node, owner.node))


def _inside(node, outer) -> bool:
    return outer.start_byte <= node.start_byte and node.end_byte <= outer.end_byte


def _shadows(ctx, start, owner, chan) -> bool:
    """A nested function between owner and the go statement redeclares chan."""
    s = start.spawner
    while s is not None and s.node != owner.node:
        if chan in gr.channel_makes(ctx, s) or any(p.name == chan for p in s.params):
            return True
        s = s.parent
    return False


def _made_in(ctx, scope, chan):
    """(scope, makes) of the innermost function around scope that makes chan; (None, None) if none."""
    s = scope
    while s is not None:
        mk = gr.channel_makes(ctx, s).get(chan)
        if mk:
            return s, mk
        s = s.parent
    return None, None


def _senders_by_chan(ctx, names) -> dict:
    """Parent channel name -> the go statements whose goroutine sends on it, once per unit."""
    cache = ctx.shared.get("CL103.senders")
    if cache is None:
        cache = ctx.shared["CL103.senders"] = {}
        for st in gr.go_statements(ctx):
            for chan in {c for c, _ in _sends_of(ctx, st, names)}:
                cache.setdefault(chan, []).append(st)
    return cache


def _sends_of(ctx, start, names):
    cache = ctx.shared.setdefault("CL103.sends", {})
    key = start.node.id
    if key not in cache:
        target = gr.resolve_call(ctx, start.spawner, start.call)
        cache[key] = _goroutine_sends(ctx, start, target, names) if target is not None else []
    return cache[key]


class _Uses:
    def __init__(self):
        self.escapes = []  # (arm, text): select receives that can be left through another arm
        self.waits = 0  # select receives with no other way out
        self.plain = []  # receives in the owner's own body


def _channel_uses(ctx, owner, chan: str, goroutines, names):
    """How the parent uses chan outside the goroutines; None when it drains it (a receive in a
    nested function, a range), or hands it on (passed, returned, stored)."""
    body = owner.body
    uses = _Uses()
    if body is None:
        return None
    for n in gr.identifiers(ctx, owner).get(chan, ()):
        if any(_inside(n, g) for g in goroutines):
            continue
        p = n.parent
        if _is_receive(p):
            case = _select_case(p)
            if case is not None:
                escape = _escape_arm(case.parent, case, owner, names)
                if escape is None:
                    uses.waits += 1
                else:
                    uses.escapes.append(escape)
                continue
            if loops.enclosing_function(n, owner.file.source.root) != owner.node:
                return None  # received in a deferred or nested function: drained
            uses.plain.append(p)
            continue
        if p.type == "range_clause":
            return None
        if p.type == "expression_list" and p.parent is not None and p.parent.type in (
                "short_var_declaration", "assignment_statement") and p.parent.child_by_field_name("left") == p:
            continue  # the declaration itself, or a re-make
        if p.type == "var_spec":
            continue
        if p.type == "argument_list":
            call = p.parent
            fn = call.child_by_field_name("function") if call is not None else None
            if fn is not None and text(fn) in ("close", "len", "cap"):
                continue
            return None  # handed to someone else
        if p.type == "send_statement" and p.child_by_field_name("channel") == n:
            continue  # the parent sends too
        return None  # stored, returned, captured elsewhere: someone else may read it
    return uses


def _early_return(owner, start, first, receives, many):
    """A return of the parent after the go statement that skips the receive: before the first receive
    on the same path, or (with several senders) inside the loop that receives, before it is done."""
    body = owner.body
    recv_loops = [a for r in receives for a in _between(r, owner.node) if a.type == "for_statement"]
    for n in walk(body, prune=lambda x: x.type == "func_literal"):
        if n.type != "return_statement":
            continue
        if n.start_byte <= start.node.end_byte:
            continue
        if any(_inside(r, n) for r in receives):
            continue  # `return <-ch`
        if n.parent is not None and _fails_test(n.parent):
            continue  # `t.Error(err); return`: a failing test
        if n.start_byte < first.start_byte:
            if _same_path(start.node, n, owner.node):
                return n
        elif many and any(_inside(n, lp) for lp in recv_loops):
            if not any(_inside(start.node, lp) for lp in recv_loops):
                return n
    return None


def _exits_process_after(owner, node) -> bool:
    """A call that ends the process (os.Exit, log.Fatal) follows node in the owner's own body."""
    for n in walk(owner.body, prune=lambda x: x.type == "func_literal"):
        if n.type == "call_expression" and n.start_byte > node.end_byte and facts.is_terminator(owner.file, n):
            pkg, name = facts.call_name(owner.file, n)
            if (pkg, name) != ("", "panic"):
                return True
    return False


def _same_path(a, b, top) -> bool:
    """a and b (both under top) are not in different branches of an if, switch or select."""
    anc_b = {x.id for x in gr.descend(top, b)}
    for x in gr.ancestors_within(a, top) + [top]:
        if x.id in anc_b:
            return x.type not in ("if_statement", "expression_switch_statement", "type_switch_statement",
                                  "select_statement")
    return True


def _elem_type(make_call) -> str:
    args = make_call.child_by_field_name("arguments")
    ct = args.named_children[0] if args is not None and args.named_children else None
    v = ct.child_by_field_name("value") if ct is not None else None
    return text(v) if v is not None else "T"


def _goroutine_sends(ctx, start, target, names):
    """[(parent channel name, send node)] for bare sends of the goroutine on channels of its parent."""
    fn = start.function
    body = target.body
    if body is None:
        return []
    out = []
    if fn is not None and fn.type == "func_literal":
        mapping = {}
        params = [p.name for p in target.params]
        for p, a in zip(params, start.args):
            if a.type == "identifier":
                mapping[p] = text(a)
        shadowed = _declared_in(target) | {p for p in params if p not in mapping}
    else:
        mapping = {}
        for p, a in zip(target.params, start.args):
            if a.type == "identifier" and p.name:
                mapping[p.name] = text(a)
        shadowed = _declared_in(target) | {p.name for p in target.params if p.name not in mapping}
        if not mapping:
            return []
    for path in facts.own_tokens(target, "<-"):
        n = path[-2]
        if n.type != "send_statement":
            continue
        ch = n.child_by_field_name("channel")
        if ch is None or ch.type != "identifier":
            continue
        name = text(ch)
        if name in mapping:
            parent_name = mapping[name]
        elif name in shadowed or fn is None or fn.type != "func_literal":
            continue
        else:
            parent_name = name
        if _send_guarded(n, names):
            continue
        out.append((parent_name, n))
    return out


def _declared_in(scope) -> set:
    """Names scope's own body declares (`x := ...`, `var x ...`)."""
    out = set()
    for path in facts.own_tokens(scope, ":=", "var"):
        n = path[-2]
        if n.type == "short_var_declaration":
            left = n.child_by_field_name("left")
            if left is not None:
                out |= {text(x) for x in left.named_children}
        elif n.type == "var_declaration":
            for spec in specs_of(n, "var_spec"):
                out |= {text(x) for x in spec.children_by_field_name("name")}
    return out


def _send_guarded(send, names) -> bool:
    """A send that is a select arm next to a stop, timer or default arm does not block forever."""
    p = send.parent
    if p is None or p.type != "communication_case":
        return False
    sel = p.parent
    for case in sel.named_children:
        if case.type == "default_case":
            return True
        comm = case.child_by_field_name("communication") if case.type == "communication_case" else None
        if comm is not None and comm.type == "receive_statement":
            right = comm.child_by_field_name("right")
            chan = right.child_by_field_name("operand") if right is not None and right.type == "unary_expression" else right
            if gr.channel_kind(chan, names) in ("stop", "timer"):
                return True
    return False


def _escape_arm(sel, case, owner, names):
    """(arm node, text) of an arm of sel that can take the parent away from the receive on case."""
    in_loop = any(a.type == "for_statement" for a in _between(sel, owner.node))
    for other in sel.named_children:
        if other == case:
            continue
        if _fails_test(other):
            continue  # the test fails on that path: what it leaves behind does not matter
        if other.type == "default_case":
            if not in_loop or _leaves(other, sel):
                return other, "default"
            continue
        if other.type != "communication_case":
            continue
        comm = other.child_by_field_name("communication")
        if comm is None or comm.type != "receive_statement":
            continue
        right = comm.child_by_field_name("right")
        chan = right.child_by_field_name("operand") if right is not None and right.type == "unary_expression" else right
        if gr.channel_kind(chan, names) in ("stop", "timer"):
            if not in_loop or _leaves(other, sel):
                return other, f"<-{text(chan)}"
    return None


def _between(node, top):
    return gr.between(node, top)


def _leaves(case, sel) -> bool:
    for n in walk(case, prune=lambda x: x.type == "func_literal"):
        if n.type in ("return_statement", "goto_statement"):
            return True
        if n.type == "break_statement" and any(c.type == "label_name" for c in n.named_children):
            return True
        if n.type == "call_expression":
            fn = n.child_by_field_name("function")
            if fn is not None and text(fn) in ("panic", "os.Exit", "log.Fatal", "log.Fatalf"):
                return True
    return False


# ------------------------------------------------------------------------------------------ field channels

def _field_send(ctx, start, names, messages):
    """A one-shot goroutine sends on an unbuffered channel field (`a.statusCh <- s`) whose receivers in
    the package all sit in selects that can leave through a stop or timeout arm: once they have left,
    the send blocks forever (istio#17860, kubernetes#25331)."""
    targets = _targets(ctx, start)
    for scope in targets:
        body = scope.body
        if body is None:
            continue
        for path in facts.own_tokens(scope, "<-"):
            n = path[-2]
            if n.type != "send_statement" or path[-3].type == "communication_case":
                continue
            chan = n.child_by_field_name("channel")
            if chan is None or chan.type != "selector_expression":
                continue
            if any(a.type == "for_statement" for a in path[:-2]):
                continue  # loops are shape 1's
            field = text(chan.child_by_field_name("field"))
            caps = gr.field_channel_makes(ctx, field)
            if not caps or not all(c is None or c.strip() == "0" for c in caps):
                continue
            verdict = _field_receivers(ctx, field, names)
            if verdict is None:
                continue
            rscope, arm, escape = verdict
            msg = messages["field-send"].format(target=_target_text(start), chan=_short(text(chan)),
                                                 receiver=rscope.name, escape=escape)
            related = [(scope.file.source, n, "blocks here once the receiver has left"),
                       (rscope.file.source, arm, f"the receiver can leave through `{escape}` here")]
            return ctx.finding(start.file.source, start.node, msg, level="warning", related=related,
                               function=start.spawner.name, start=start.node.start_point, end=start.header_end())
    return None


def _is_receive(node) -> bool:
    return node is not None and node.type == "unary_expression" and \
        text(node.child_by_field_name("operator") or node) == "<-"


def _select_case(receive):
    """The select arm whose communication is this receive (`case v := <-ch:`), or None."""
    rs = receive.parent
    if rs is not None and rs.type == "receive_statement" and rs.parent is not None \
            and rs.parent.type == "communication_case":
        return rs.parent
    return None


def _field_receivers(ctx, field: str, names):
    """(scope, arm, escape) when every receive of `.field` in the package is a select arm next to an
    arm that leaves; None when something drains it (a plain receive, a range) or nothing receives it."""
    cache = ctx.shared.setdefault("CL103.field_receivers", {})
    if field in cache:
        return cache[field]
    escapes = []  # (the order scopes are read in, the escape), the first reported
    needle = field.encode()
    for rank, gf in enumerate(ctx.package.files):
        data = gf.source.data
        if needle not in data:
            continue
        for path in paths_at(gf.source.root, word_spans(data, needle)):
            if len(path) < 3 or path[-1].type != "field_identifier" or path[-2].type != "selector_expression" \
                    or path[-2].child_by_field_name("field") != path[-1]:
                continue
            func = facts.innermost_function(path, 2)
            scope = facts.scope_at(ctx, func) if func is not None else None
            if scope is None or scope.body is None:
                continue
            p = path[-3]
            if p.type == "range_clause":
                cache[field] = None
                return None
            if not _is_receive(p):
                continue
            case = _select_case(p)
            if case is None:
                cache[field] = None  # a plain receive: someone drains it
                return None
            escape = _escape_arm(case.parent, case, scope, names)
            if escape is None:
                cache[field] = None
                return None
            order = (rank, scope.node.start_byte, -scope.node.end_byte, p.start_byte)
            escapes.append((order, (scope, escape[0], escape[1])))
    found = min(escapes, key=lambda e: e[0])[1] if escapes else None
    cache[field] = found
    return found


def _sends_nobody_can_receive(ctx, messages, include_tests):
    """`ch := make(chan T)` then `ch <- v` with nothing in between that could receive (no goroutine, no
    call, no store has seen ch yet): the send always blocks (moby#33293)."""
    for func_id, made in gr.target_channel_makes(ctx):
        scope = facts.scope_by_id(ctx, func_id)
        if scope is None or not scope.file.source.is_target or scope.body is None:
            continue
        src = scope.file.source
        for name, mks in made.items():
            if len(mks) != 1 or not mks[0].unbuffered or mks[0].decl.type not in (
                    "short_var_declaration", "var_spec"):
                continue
            send = _first_use_is_send(ctx, scope, name, mks[0].decl)
            if send is None:
                continue
            msg = messages["send-nobody-receives"].format(chan=name)
            yield ctx.finding(src, send, msg, level="error", function=scope.name,
                              related=[(src, mks[0].node, "made here, and handed to nobody before the send")])


def _first_use_is_send(ctx, scope, name: str, decl):
    """The first use of name after its declaration, when it is a bare send in the same function, not in
    a loop or a select."""
    for n in gr.identifiers(ctx, scope).get(name, ()):
        if n.start_byte <= decl.end_byte:
            continue
        p = n.parent
        if p is not None and p.type == "send_statement" and p.child_by_field_name("channel") == n \
                and loops.enclosing_function(n, scope.file.source.root) == scope.node \
                and not any(a.type in ("for_statement", "communication_case") for a in _between(n, scope.node)):
            return p
        return None
    return None
