"""CL202 blocking-task: a task or thread started per connection, peer, request or item whose body loops
forever (no `break`, `return` or `?`, no `select!` arm on a shutdown signal) while it awaits or blocks.

The Rust twin of CL103. The facts (spawn calls, the body each task runs, where the spawn sits) come
from closelint.rust.facts; this module decides whether the body's loop can end, and the level.
"""

from __future__ import annotations

from closelint.rust.facts import (
    BODY_BOUNDARIES, LOOPS, TooDeep, Vocab, call_fate, callee_name, compact, facts, macro_name, strip_parens,
    up, words,
)
from closelint.treeutil import text, walk

# No module TOKENS: users add spawn functions in config ([[CL202.spawns]]), so the byte prefilter is
# built from the catalog in check().

_MAX_DEPTH = 3  # how many calls deep a task's body is followed into the unit's functions
_MAX_LOOPS = 16  # loops looked at per task (each one walks its body)
_MAX_NODES = 20_000  # nodes walked per loop; a bigger loop is left alone


class _Cfg:
    def __init__(self, ctx):
        o = ctx.options
        self.stop = frozenset(w.lower() for w in o.get("stop-signals", ()))
        self.blocking = frozenset(o.get("blocking-calls", ()))
        self.wait_macros = frozenset(o.get("wait-macros", ()))
        self.exit_macros = frozenset(o.get("exit-macros", ()))
        self.exit_calls = frozenset(o.get("exit-calls", ()))
        self.unwraps = frozenset(o.get("panicking-unwraps", ()))
        self.fallible = frozenset(o.get("fallible-waits", ()))
        self.peer_gone = frozenset(o.get("peer-gone-calls", ()))
        self.background = o.get("report-background", True)
        self.constructors = tuple(o.get("background-constructors", ()))


def check(ctx):
    vocab = Vocab.from_ctx(ctx)
    names = [n.encode() for n in vocab.spawn_names()]
    if not any(n in f.data for f in ctx.targets for n in names):
        return
    cfg = _Cfg(ctx)
    uf = facts(ctx, vocab)
    for sp in uf.spawns:
        if not sp.file.source.is_target:
            continue
        fate = _caller_fate(uf, sp) if sp.fate == "returned" else sp.fate
        if fate in ("awaited", "aborted"):
            continue
        w = uf.where(sp.file, sp.call)
        if w.test or w.once:
            continue
        found = _forever_loop(uf, sp, cfg)
        if found is None:
            continue
        lrf, loop, (wait, ignored), via = found
        lp = w.repeating_loop(collections=False)
        what = "thread" if sp.kind == "thread" else "task"
        call_name = sp.path if len(sp.path) <= 40 else sp.path.rsplit(".", 1)[-1]
        if lp is not None:
            if lp.kind == "unbounded":
                per, noun = f"on every turn of {lp.reason}", "turn"
            else:
                per, noun = f"once per {lp.noun} ({lp.reason})", lp.noun
            level = "error" if fate == "dropped" else "warning"
        elif w.per or uf.per_via_callers(w.fn):
            per = w.per or uf.per_via_callers(w.fn)
            noun = _per_noun(per)
            level = "error" if fate == "dropped" else "warning"
        else:
            # a single background task: worth a note only when it is per instance of a type (spawned
            # in a method or constructor), not from `main` or a helper that only `main` calls (looked
            # up in the whole crate), and not when no caller can be seen unless other crates may call
            # it (a `pub` constructor of a library)
            if (not cfg.background or fate != "dropped" or w.fn is None or not w.fn.impl_type
                    or not _constructor(w.fn.name, cfg)):
                continue
            reach = uf.crate_reach(w.fn)
            if reach == "startup" or (reach == "unknown" and not uf.public_api(w.fn)):
                continue
            yield _background(ctx, sp, w, lrf, loop, wait, ignored, what, call_name)
            continue
        whose = "whose `loop`" if not via else f"whose `loop` (in `{via[-1].display}`)"
        if fate == "kept" and _aborted_later(uf, sp):
            continue
        handle = (", and the dropped JoinHandle cannot stop it" if fate == "dropped"
                  else "; its JoinHandle is kept but never aborted")
        stop = "check a stop flag" if what == "thread" else "select on a `CancellationToken`"
        if ignored is not None:
            fix = f"Leave the loop when `{_short(ignored)}` fails instead of ignoring the error, or {stop}."
        elif what == "thread":
            fix = f"Leave the loop when the peer goes away (`break` on `Ok(0)`/`Err`, or `?`), or {stop}."
        else:
            fix = f"Leave the loop when the peer goes away (`?`/`break` on `Err`/`None`), or {stop}."
        msg = (f"`{call_name}` starts a {what} {per} {whose} never ends (no `break`, `return`, `?` or "
               f"shutdown `select!` arm; it waits on `{_short(wait)}`), so every {noun} leaves a {what} "
               f"and all it holds behind{handle}. {fix}")
        related_ignored = ([(lrf.source, ignored, "the error that would end the loop is ignored here")]
                           if ignored is not None else [])
        related = [(lrf.source, wait, f"the {what} waits here on every turn of a loop with no exit"),
                   *related_ignored]
        if lrf is not sp.file or not (sp.call.start_byte <= loop.start_byte < sp.call.end_byte):
            related.append((lrf.source, _loop_keyword(loop), "this loop never ends"))
        yield ctx.finding(sp.file.source, sp.call, msg, level=level, related=related,
                          function=w.fn.display if w.fn else "")


def _background(ctx, sp, w, lrf, loop, wait, ignored, what, call_name):
    t = w.fn.impl_type
    msg = (f"`{call_name}` in `{w.fn.display}` starts a background {what} whose `loop` never ends "
           f"(it waits on `{_short(wait)}` with no `break`, `return`, `?` or shutdown arm) and drops its "
           f"JoinHandle: fine if the process builds one `{t}` and keeps it for good, but every other "
           f"`{t}` built leaves a {what} (and what it captured) behind. "
           + (f"Leave the loop when `{_short(ignored)}` fails (the other side is gone), keep the "
              f"JoinHandle and abort it on drop, or select on a shutdown signal." if ignored is not None
              else "Keep the JoinHandle and abort it on drop, or select on a shutdown signal."))
    related = [(lrf.source, wait, f"the {what} waits here forever")]
    if ignored is not None:
        related.append((lrf.source, ignored, "the error that would end the loop is ignored here"))
    return ctx.finding(sp.file.source, sp.call, msg, level="note", related=related,
                       function=w.fn.display)


def _caller_fate(uf, sp) -> str:
    """The spawning function returns the JoinHandle: what its callers do with it. Dropped only when
    every caller drops it; a caller that aborts or awaits it makes the task managed."""
    fates = [call_fate(c) for _, c in uf.call_sites(sp.fn) if c.type == "call_expression"] if sp.fn else []
    if not fates:
        return "kept"
    if any(f in ("aborted", "awaited") for f in fates):
        return "aborted"
    return "dropped" if all(f == "dropped" for f in fates) else "kept"


def _constructor(name: str, cfg) -> bool:
    return any(name == c or (c.endswith("*") and name.startswith(c[:-1])) for c in cfg.constructors)


def _aborted_later(uf, sp) -> bool:
    """The kept JoinHandle goes into a field (`self.tasks.push(h)`, `self.task = Some(h)`) that a
    function of the unit aborts (`self.tasks.remove(id)` ... `.abort()`, a Drop impl)."""
    fields = _stored_in_fields(sp)
    if not fields:
        return False
    return bool(fields & uf.fields_near_abort())


def _stored_in_fields(sp) -> set:
    """Fields of `self` the spawn's JoinHandle is stored in, directly or through its binding."""
    out = set()
    nodes = [sp.call]
    p = sp.call.parent
    while p is not None and p.type in ("parenthesized_expression", "try_expression", "arguments",
                                       "call_expression") and p.type != "let_declaration":
        if p.type == "call_expression":
            nodes.append(p)
        p = p.parent
    if p is not None and p.type == "let_declaration":
        names = [text(n) for n in walk(p.child_by_field_name("pattern")) if n.type == "identifier"]
        scope = p.parent
        for n in walk(scope, prune=lambda n: n.type == "function_item"):
            if n.start_byte > p.end_byte and n.type == "identifier" and text(n) in names:
                nodes.append(n)
    for n in nodes:
        try:
            chain = list(up(n, limit=64))
        except TooDeep:
            continue
        for a in chain:
            if a.type in ("expression_statement", "let_declaration", "block"):
                break
            if a.type == "assignment_expression":
                left = a.child_by_field_name("left")
                if left is not None and left.type == "field_expression":
                    out.add(text(left.child_by_field_name("field")))
                break
            if a.type == "call_expression":
                fn = a.child_by_field_name("function")
                if fn is not None and fn.type == "field_expression":
                    recv = fn.child_by_field_name("value")
                    if recv is not None and recv.type == "field_expression":
                        out.add(text(recv.child_by_field_name("field")))
                        break
            if a.type == "field_initializer":
                name = a.child_by_field_name("field")
                if name is not None:
                    out.add(text(name))
                break
            if a.type == "shorthand_field_initializer":
                out.add(text(a))
                break
    return out


def _per_noun(per: str) -> str:
    """`per connection (...)` / `once per item (...)` -> connection / item."""
    head = per.split(" (", 1)[0]
    if "per " in head:
        return head.rsplit("per ", 1)[1].split(" ", 1)[0]
    return "turn" if "endless" in head else "request"


def _short(node, limit: int = 48) -> str:
    s = " ".join(text(node).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _loop_keyword(loop):
    for c in loop.children:
        if c.type in ("loop", "while"):
            return c
    return loop


# ------------------------------------------------------------------------------ the task's body

def _forever_loop(uf, sp, cfg):
    """(RustFile, loop, wait node, [Fn path]) for the first loop the task runs that cannot end, or
    None. Follows calls into the unit's functions up to _MAX_DEPTH deep; any mention of a stop
    signal on the way (a select! arm on `cancelled()`, a shutdown receiver) makes the task clean."""
    spawn_args = _spawn_args(uf)
    queue = [(rf, node, fn, []) for rf, node, fn in uf.task_roots(sp)]
    seen = set()
    candidates = []
    budget = [_MAX_LOOPS]
    while queue:
        rf, body, fn, via = queue.pop(0)
        if body is None or body in seen:
            continue
        seen.add(body)
        prune = lambda n: n.type == "function_item" or (n in spawn_args and n is not body)  # noqa: E731
        for n in walk(body, prune=prune):
            if n.type in ("identifier", "field_identifier") and _is_stop(text(n), cfg):
                return None
            if n.type == "token_tree":
                for tok in n.children:
                    if tok.type == "identifier" and _is_stop(text(tok), cfg):
                        return None
            if (n.type == "loop_expression" or (
                    n.type == "while_expression" and text(n.child_by_field_name("condition")) == "true")) \
                    and budget[0] > 0:
                budget[0] -= 1
                found = _endless(n, cfg)
                if found is not None:
                    candidates.append((rf, n, found, via))
            elif n.type == "call_expression" and len(via) < _MAX_DEPTH and not _inside(n, spawn_args, body):
                for callee in uf.resolve_call(rf, n, fn):
                    if callee.body is not None and callee.body not in seen and not callee.is_test:
                        queue.append((callee.file, callee.body, callee, [*via, callee]))
    return candidates[0] if candidates else None


def _spawn_args(uf):
    args = set()
    for sp in uf.spawns:
        if sp.arg is not None:
            args.add(strip_parens(sp.arg))
    return args


def _inside(node, spawn_args, body) -> bool:
    """node is inside another spawn's body (or too deep to tell) within body."""
    try:
        for a in up(node):
            if a == body:
                return False
            if a in spawn_args:
                return True
    except TooDeep:
        return True
    return False


def _is_stop(name: str, cfg) -> bool:
    return any(w in cfg.stop for w in words(name)) or name.lower() in cfg.stop


def _endless(loop, cfg):
    """(first wait, first ignored failure) of a loop that has no exit; None if the loop can end (or
    never waits: a busy loop is another problem). The wait is an await, a blocking call or a
    select!; the ignored failure a fallible call whose error is thrown away (`let _ = tx.send(..)`,
    `.ok()`, `if let Ok(..) = ..`, `.is_err()` that does not leave)."""
    wait = None
    ignored = None
    body = loop.child_by_field_name("body")
    if body is None:
        return None
    for count, n in enumerate(walk(body, prune=lambda n: n.type in BODY_BOUNDARIES)):
        if count > _MAX_NODES:
            return None
        t = n.type
        if t in ("return_expression", "try_expression"):
            return None
        if t == "break_expression":
            if _breaks_out(n, loop, _label_of(n)):
                return None
        elif t == "await_expression":
            wait = wait or n
        elif t == "macro_invocation":
            name = macro_name(n)
            if name in cfg.exit_macros:
                return None
            if name in cfg.wait_macros:
                wait = wait or n
            if _token_exit(n, loop):
                return None
            if wait is None and any(tok.type == "await" for tok in walk(n)):
                wait = n
        elif t == "call_expression":
            fn = n.child_by_field_name("function")
            name = callee_name(n)
            if fn is not None and compact(fn) in cfg.exit_calls:
                return None
            if name in cfg.unwraps and fn is not None and fn.type == "field_expression":
                recv = strip_parens(fn.child_by_field_name("value"))
                if recv is not None and (recv.type == "await_expression" or (
                        recv.type == "call_expression" and callee_name(recv) in cfg.fallible)):
                    return None
            if name in cfg.blocking and wait is None:
                wait = n
            if name in cfg.fallible and _result_ignored(n) and (
                    ignored is None or (name in cfg.peer_gone and callee_name(ignored) not in cfg.peer_gone)):
                ignored = n
    return (wait, ignored) if wait is not None else None


def _result_ignored(call) -> bool:
    """The Result of call is thrown away: `let _ = call`, `call.ok();`, `if let Ok(..) = call`,
    `if call.is_err() { .. }` (the loop has no exit, so the branch does not leave)."""
    node = call
    p = node.parent
    while p is not None and p.type in ("await_expression", "parenthesized_expression"):
        node, p = p, p.parent
    if p is None:
        return False
    if p.type == "let_declaration":
        pat = p.child_by_field_name("pattern")
        return pat is not None and text(pat).startswith("_")
    if p.type == "field_expression":
        name = text(p.child_by_field_name("field"))
        return name in ("ok", "is_err", "is_ok")
    if p.type == "let_condition":
        pat = p.child_by_field_name("pattern")
        return pat is not None and text(pat).startswith("Ok(")
    return False


def _label_of(brk) -> str:
    lab = next((c for c in brk.named_children if c.type == "label"), None)
    return text(lab) if lab is not None else ""


def _breaks_out(node, loop, label: str) -> bool:
    """A `break` at node (with its label, or none) leaves `loop`: an unlabelled break whose nearest
    loop is ours, or a labelled one naming ours or a loop (or block) around it."""
    try:
        for a in up(node):
            if a.type in BODY_BOUNDARIES:
                return False
            if label:
                if a.type in LOOPS or a.type == "block":
                    lab = next((c for c in a.children if c.type == "label"), None)
                    if lab is not None and text(lab) == label:
                        return a == loop or any(b == a for b in up(loop))
            elif a.type in LOOPS:
                return a == loop
    except TooDeep:
        return True  # cannot tell: take it as a way out
    return False


def _token_exit(mac, loop) -> bool:
    """`break`, `return` or `?` written inside a macro's tokens (a `select!` arm)."""
    for n in walk(mac):
        if n.type in ("break", "return") and n.parent is not None and n.parent.type == "token_tree":
            if n.type == "return":
                return True
            nxt = n.next_sibling
            label = ""
            if nxt is not None and nxt.type == "'":  # `break 'outer` is `'` + identifier in tokens
                ident = nxt.next_sibling
                label = "'" + text(ident) if ident is not None else ""
            elif nxt is not None and nxt.type in ("label", "lifetime"):
                label = text(nxt)
            if _breaks_out(mac, loop, label):
                return True
        elif n.type == "?" and n.parent is not None and n.parent.type == "token_tree":
            prev = n.prev_sibling
            # `x?`, `f(..)?`, `.await?` are tries; `info!(?peer)` / `%x` / `, ?y` are tracing sigils
            if prev is not None and (prev.type in ("identifier", "await", "self")
                                     or prev.type.endswith("literal")
                                     or (prev.type == "token_tree" and text(prev)[:1] in "([")):
                return True
    return False
