"""CL203 leaked-allocation: `Box::leak`, `Vec::leak`/`String::leak`, `mem::forget` of a buffer and an
unused `ManuallyDrop::new` where they run again and again: inside a loop, a spawned task, or a function
that runs per request or connection. One-off leaks at start-up (`main`, a `static`, `OnceLock`,
`lazy_static`, `LazyLock`) and test code stay clean.

Where a node sits (loops, tasks, per-request functions, start-up) comes from closelint.rust.facts.
"""

from __future__ import annotations

from closelint import parsing
from closelint.rust.facts import (
    callee_name, compact, facts, identifiers_in_pattern, macro_name, strip_parens, type_head,
)
from closelint.treeutil import text, walk

# No module TOKENS: users add leaking calls in config ([[CL203.leaks]]); check() builds the byte
# prefilter from the catalog.

_QUERY = """
((call_expression function: [(scoped_identifier name: (identifier) @n)
                             (identifier) @n
                             (field_expression field: (field_identifier) @n)
                             (generic_function function: [(scoped_identifier name: (identifier) @n)
                                                          (identifier) @n])]) @call
 (#any-of? @n {names}))
"""


class _Cfg:
    def __init__(self, ctx):
        o, c = ctx.options, ctx.catalogs
        self.rows = list(c.get("leaks", ()))
        # the called names (`leak`, `forget`, `new`) and the bytes a file must hold to have one
        # (`ManuallyDrop` rather than `new`)
        self.names = sorted({(r.get("path") or r.get("method", "")).rsplit("::", 1)[-1] for r in self.rows} - {""})
        self.tokens = tuple({_token(r).encode() for r in self.rows} - {b""})
        self.buffer_types = frozenset(o.get("buffer-types", ()))
        self.buffer_macros = frozenset(o.get("buffer-macros", ()))
        self.buffer_methods = frozenset(o.get("buffer-methods", ()))
        self.ffi_methods = frozenset(o.get("ffi-pointer-methods", ()))
        self.memo_stores = frozenset(o.get("memo-stores", ()))
        self.memo_lookups = frozenset(o.get("memo-lookups", ()))


def _token(row) -> str:
    parts = (row.get("path") or row.get("method", "")).split("::")
    while len(parts) > 1 and parts[-1] in ("new", "from", "default"):
        parts.pop()
    return parts[-1]


def check(ctx):
    cfg = _Cfg(ctx)
    if not any(t in f.data for f in ctx.targets for t in cfg.tokens):
        return
    uf = facts(ctx)
    defines_leak = "leak" in uf.by_name  # a type of the unit has its own `leak` method
    query = _QUERY.format(names=" ".join(f'"{n}"' for n in cfg.names))
    for rf in uf.files:
        src = rf.source
        if not src.is_target or not any(t in src.data for t in cfg.tokens):
            continue
        for call in parsing.captures("rust", query, src.root).get("call", ()):
            row, arg = _match(rf, call, cfg, defines_leak)
            if row is None:
                continue
            w = uf.where(rf, call)
            if w.test or w.once or _memoized(call, w, cfg):
                continue
            what = _what(row, call, arg, w, cfg)
            if what is None:
                continue
            kind, desc = what
            where, level = _context(uf, w)
            if where is None:
                continue
            grows = not level.endswith("?")  # the weak case: nothing says it runs with traffic
            level = "note" if kind == "ffi" else level.rstrip("?")
            yield ctx.finding(src, call, _message(row, kind, desc, where, call, grows), level=level,
                              function=w.fn.display if w.fn else "")


def _match(rf, call, cfg, defines_leak):
    """(catalog row, the argument that is leaked) when call is one of the catalog's leaks."""
    fn = call.child_by_field_name("function")
    if fn.type == "generic_function":
        fn = fn.child_by_field_name("function")
    args = call.child_by_field_name("arguments")
    first = args.named_children[0] if args is not None and args.named_child_count else None
    if fn.type == "field_expression":
        name = text(fn.child_by_field_name("field"))
        for row in cfg.rows:
            if row.get("method") == name and not (args is not None and args.named_child_count):
                if defines_leak:
                    return None, None
                return row, fn.child_by_field_name("value")
        return None, None
    raw = compact(fn)
    full = rf.resolve_path(raw)
    for row in cfg.rows:
        path = row.get("path")
        if path and (full == path or raw == path or full.endswith("::" + path)) and first is not None:
            return row, first
    return None, None


def _what(row, call, arg, w, cfg):
    """("buffer" | "ffi" | "value", description) of what leaks, or None when it is not memory that
    matters (a guard, a JoinHandle, `self` inside a type's own unsafe plumbing)."""
    kind = row.get("kind")
    if kind == "leak":
        return "value", ""
    if kind == "manually-drop" and not _discarded(call):
        return None
    arg = strip_parens(arg)
    if arg is None or arg.type == "self":
        return None
    if arg.type == "identifier":
        name = text(arg)
        if w.fn is not None and _pointer_taken(w.fn.body, name, call.start_byte, cfg):
            return "ffi", name
        t = _origin(w, name, call.start_byte, cfg)
        return ("buffer", f"a `{t}`") if t else None
    t = _buffer_expr(arg, cfg)
    return ("buffer", f"a `{t}`") if t else None


def _memoized(call, w, cfg) -> bool:
    """The leak sits in a function or closure that stores into a map or set (`cache.insert(k, v)`,
    `.entry(k).or_insert_with(..)`): leaky interning, once per distinct key, not per run."""
    scopes = [*w.closures]
    if w.fn is not None and w.fn.body is not None:
        scopes.append(w.fn.body)
    for scope in scopes:
        names = {callee_name(n) for n in walk(scope, prune=lambda n: n.type == "function_item")
                 if n.type == "call_expression"}
        if names & cfg.memo_stores and names & cfg.memo_lookups:
            return True  # looked up, then stored on a miss
    return False


def _discarded(call) -> bool:
    """`ManuallyDrop::new(x);`, `let _ = ManuallyDrop::new(x);`, or a binding never used again."""
    p = call.parent
    if p is None:
        return False
    if p.type == "expression_statement":
        return True
    if p.type != "let_declaration":
        return False
    pat = p.child_by_field_name("pattern")
    if pat is None or text(pat) == "_":
        return True
    names = set(identifiers_in_pattern(pat))
    scope = p.parent
    for n in walk(scope, prune=lambda n: n.type == "function_item"):
        if n.start_byte > p.end_byte and n.type == "identifier" and text(n) in names:
            return False
        if n.start_byte > p.end_byte and n.type == "token_tree":
            if any(t.type == "identifier" and text(t) in names for t in n.children):
                return False
    return True


def _pointer_taken(body, name: str, before: int, cfg) -> bool:
    """`name.as_mut_ptr()` (or as_ptr, ...) before the forget: the buffer is handed to foreign code."""
    if body is None:
        return False
    for n in walk(body, prune=lambda n: n.type == "function_item"):
        if n.start_byte >= before:
            break
        if n.type == "call_expression" and callee_name(n) in cfg.ffi_methods:
            fn = n.child_by_field_name("function")
            recv = strip_parens(fn.child_by_field_name("value")) if fn.type == "field_expression" else None
            if recv is not None and recv.type == "identifier" and text(recv) == name:
                return True
    return False


def _origin(w, name: str, before: int, cfg) -> str:
    """The buffer type a local holds (`Vec`, `String`, `Box`, ...), from its parameter type, its
    `let` annotation or the expression it was bound to; "" when unknown or not a buffer."""
    fn = w.fn
    if fn is None:
        return ""
    best = ""
    for pname, tnode, _ in fn.params:
        if pname == name and tnode is not None:
            head = type_head(tnode, unwrap=())[0]
            best = head if head in cfg.buffer_types else ""
    scope = fn.body
    if scope is None:
        return best
    for n in walk(scope, prune=lambda n: n.type == "function_item"):
        if n.start_byte >= before:
            break
        if n.type != "let_declaration":
            continue
        pat = n.child_by_field_name("pattern")
        if pat is not None and pat.type == "mut_pattern" and pat.named_child_count:
            pat = pat.named_children[-1]
        if pat is None or pat.type != "identifier" or text(pat) != name:
            continue
        t = n.child_by_field_name("type")
        if t is not None:
            head = type_head(t, unwrap=())[0]
            best = head if head in cfg.buffer_types else ""
            continue
        best = _buffer_expr(n.child_by_field_name("value"), cfg)
    return best


def _buffer_expr(v, cfg) -> str:
    """The buffer type an expression builds: `vec![..]`, `format!(..)`, `Vec::with_capacity(n)`,
    `s.to_string()`, `Box::new(x)`, `iter.collect::<Vec<_>>()`; "" otherwise."""
    v = strip_parens(v)
    for _ in range(4):
        if v is None:
            return ""
        if v.type == "try_expression":
            v = v.named_children[0] if v.named_child_count else None
            continue
        break
    if v is None:
        return ""
    if v.type == "macro_invocation":
        name = macro_name(v)
        return {"vec": "Vec", "format": "String"}.get(name, name) if name in cfg.buffer_macros else ""
    if v.type == "call_expression":
        fn = v.child_by_field_name("function")
        if fn is None:
            return ""
        if fn.type == "generic_function":
            targs = fn.child_by_field_name("type_arguments")
            if targs is not None and targs.named_child_count:
                head = type_head(targs.named_children[0], unwrap=())[0]
                if head in cfg.buffer_types:
                    return head
            fn = fn.child_by_field_name("function")
        if fn.type == "scoped_identifier":
            path = fn.child_by_field_name("path")
            owner = compact(path).rsplit("::", 1)[-1] if path is not None else ""
            if owner in cfg.buffer_types:
                return owner
        if fn.type == "field_expression" and callee_name(v) in cfg.buffer_methods:
            return "String" if callee_name(v) in ("to_string", "to_owned", "into_string") else "buffer"
    return ""


def _context(uf, w):
    """(why the leak repeats, level) or (None, None) when nothing says it runs more than once.

    A loop that repeats per connection, per received item or forever is enough (warning). A `for`
    over a collection repeats only as often as its function runs: warning when the function runs
    per request, per connection or in a spawned task, nothing otherwise (a CLI builder leaks in
    such a loop once)."""
    startup = uf.startup_only(w.fn)
    lp = w.repeating_loop(collections=False)
    if lp is not None:
        return f"inside {lp.reason}", "warning"
    why, level = None, None
    if w.task is not None:
        sp = w.task
        sw = uf.where(sp.file, sp.call)
        if sw.test or sw.once:
            return None, None
        per = sw.per or uf.per_via_callers(sw.fn)
        if per:
            why, level = f"inside a task started {per}", "note"
        elif sw.fn is not None and _may_run_again(uf, sw.fn):
            why, level = f"inside a task spawned in `{sw.fn.display}`", "note"
        else:
            return None, None
    elif w.fn is not None and not startup:
        per = w.per or uf.per_via_callers(w.fn)
        if per:
            why, level = f"in `{w.fn.display}`, which runs {per}", "note"
    if why is None:
        # a loop over data in an ordinary function leaks one per element on every call, but nothing
        # says how often it is called: clap builders leak argument names in such loops once, at
        # start-up, from functions `main` reaches through other folders. Left alone.
        return None, None
    coll = w.repeating_loop(collections=True)
    if coll is not None:
        return f"inside {coll.reason}, {why}", "warning"
    return why, level


def _may_run_again(uf, fn) -> bool:
    """fn may run more than once: some caller in the crate is not start-up code, or nobody in the
    crate calls it but other crates may (a `pub` function of a library). A function reached only from
    `main`, or whose callers cannot be seen at all, is left alone."""
    reach = uf.crate_reach(fn)
    return reach == "other" or (reach == "unknown" and uf.public_api(fn))


def _message(row, kind, desc, where, call, grows) -> str:
    what = _short(call)
    if kind == "ffi":
        return (f"`{what}` after `{desc}.as_mut_ptr()` ({where}) hands the buffer to foreign code: it "
                f"leaks every time unless the other side gives it back to be freed (rebuilt with "
                f"`Vec::from_raw_parts` and dropped). Make sure a matching free function exists.")
    desc = f" ({desc})" if desc else ""
    growth = ", so memory grows with traffic" if grows else ""
    return f"`{what}`{desc} {where}: {row['consequence']}{growth}; {row['fix']}."


def _short(node, limit: int = 60) -> str:
    s = " ".join(text(node).split())
    return s if len(s) <= limit else s[: limit - 5] + "...)"
