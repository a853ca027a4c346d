"""CL106 timer-leak-in-loop: time.After in a looping select and time.Tick that can never be stopped,
for modules whose Go version predates 1.23's collectable timers."""

from __future__ import annotations

import re

from closelint import parsing
from closelint.context import go_mod_for
from closelint.golang import facts, loops
from closelint.treeutil import text, walk

TOKENS = (b"After(", b"Tick(")

_FUNCS = facts.FUNC_NODES
_CALLS = """(call_expression
  function: (selector_expression operand: (identifier) @pkg field: (field_identifier) @name)
  (#match? @name "^(After|Tick)$")) @call"""

_GO_LINE = re.compile(rb"(?m)^go[ \t]+(\S+)")
_GO_DEBUG = re.compile(rb"(?m)^//go:debug[ \t]+(\S+)")
_SETTING = re.compile(r"^([A-Za-z0-9_.]+)=(\S+)$")
_DEFAULT_GO = re.compile(r"^go1\.(\d+)")
_UNITS = {"Nanosecond": 1e-9, "Microsecond": 1e-6, "Millisecond": 1e-3, "Second": 1.0,
          "Minute": 60.0, "Hour": 3600.0}


def check(ctx):
    sources = [s for s in ctx.targets
               if s.lang == "go" and (b"After(" in s.data or b"Tick(" in s.data)]
    if not sources:
        return
    messages = ctx.catalogs.get("messages", {}) or {}
    # the version gate first: a module on Go 1.23 or later is never parsed for this rule
    old, why = _old_timers(ctx, sources[0], messages)
    if not old:
        return
    opts = ctx.options
    min_after = float(opts.get("min-after-seconds", 1.0))
    max_fixed = int(opts.get("max-fixed-iterations", 4))
    test_level = opts.get("test-level", "note")
    skip_main = bool(opts.get("skip-main-package", True))
    after_in_tests = bool(opts.get("report-after-in-tests", False))
    signal_re = ctx.pattern("signal-channel-pattern")
    for src in sources:
        gofile = ctx.package.file_of(src)
        if gofile is None:
            continue
        calls = []
        for _, caps in parsing.matches("go", _CALLS, gofile.source.root):
            if gofile.import_path(text(caps["pkg"][0])) == "time":
                calls.append((caps["call"][0], text(caps["name"][0])))
        if not calls:
            continue
        is_test = facts.is_test_code(gofile)
        level = test_level if is_test else None
        for call, name in calls:
            if name == "After":
                if is_test and not after_in_tests:
                    continue
                found = _after(ctx, gofile, call, why, messages, min_after, max_fixed, level, signal_re)
            else:
                found = _tick(ctx, gofile, call, why, messages, max_fixed, level, skip_main)
            if found is not None:
                yield found


# ---------------------------------------------------------------------------------- version gate

def _old_timers(ctx, source, messages) -> tuple[bool, str]:
    """(pre-1.23 timer semantics, why) from the nearest go.mod's go line, its godebug settings, and
    the package's //go:debug directives (they act like a godebug line for the main package). Every
    file of a unit is in one folder, so one answer serves the unit."""
    go_mod = go_mod_for(source.path.parent)
    data = b""
    if go_mod is not None:
        src = ctx.read(go_mod)
        data = src.data if src is not None else b""
    settings = _godebug_settings(data)
    for f in ctx.files:
        if f.lang == "go" and b"//go:debug" in f.data:
            for m in _GO_DEBUG.finditer(f.data):
                for item in m.group(1).decode("utf-8", "replace").split(","):
                    s = _SETTING.match(item.strip())
                    if s:
                        settings[s.group(1)] = s.group(2)
    if "asynctimerchan" in settings:
        old = settings["asynctimerchan"] == "1"
        return old, messages.get("why-godebug", "asynctimerchan=1") if old else ""
    default = _DEFAULT_GO.match(settings.get("default", ""))
    if default:
        minor = int(default.group(1))
        return minor < 23, messages.get("why-default", "godebug default=go1.{minor}").format(minor=minor)
    version = ctx.go_version(source)
    if go_mod is None:
        return True, messages.get("why-none", "no go.mod found: assuming a Go toolchain before 1.23")
    if version is None:
        # a go.mod without a go line means go 1.16 to the go command
        return True, messages.get("why-old", "go.mod says go {version}").format(version="1.16 (no go line)")
    if version >= (1, 23):
        return False, ""
    m = _GO_LINE.search(data)
    shown = m.group(1).decode("utf-8", "replace") if m else f"{version[0]}.{version[1]}"
    return True, messages.get("why-old", "go.mod says go {version}").format(version=shown)


def _godebug_settings(go_mod: bytes) -> dict[str, str]:
    out = {}
    in_block = False
    for raw in go_mod.decode("utf-8", "replace").splitlines():
        line = raw.split("//", 1)[0].strip()
        if in_block:
            if line.startswith(")"):
                in_block = False
                continue
            spec = line
        elif line.startswith("godebug"):
            rest = line[len("godebug"):].strip()
            if rest.startswith("("):
                in_block = True
                rest = rest[1:].strip()
                if not rest:
                    continue
            spec = rest
        else:
            continue
        m = _SETTING.match(spec)
        if m:
            out[m.group(1)] = m.group(2)
    return out


# ------------------------------------------------------------------------------------ time.After

def _after(ctx, gofile, call, why, messages, min_after, max_fixed, level, signal_re):
    root = gofile.source.root
    anc = loops.ancestors_of(call, root)  # innermost first
    fors = _body_loops(call, anc)
    if not fors:
        return None
    found = _select_arm(call, fors[0], anc)
    if found is None:
        return None  # a blocking receive, or a timer kept for more than one iteration
    select, arm = found
    func = next((a for a in anc if a.type in _FUNCS), None)
    scope = facts.scope_at(ctx, func) if func is not None else None
    if scope is None:
        return None
    seconds = _seconds(gofile, _first_arg(call), {**_constants(ctx), **_locals(gofile, anc)})
    if seconds is not None and seconds < min_after:
        return None
    resolve = loops.constants(ctx, scope)
    culprit = None
    for loop in fors:
        if not _inside(select, loop):
            break
        if not any(_arm_iterates(ctx, scope, other, loop, signal_re)
                   for other in select.named_children
                   if other.type in ("communication_case", "default_case") and other.id != arm.id):
            continue
        count = loops.fixed_iterations(loop, resolve)
        if count is not None and count <= max_fixed:
            continue
        culprit = loop
        break
    if culprit is None:
        return None
    arg = _first_arg(call)
    template = messages.get("after") or "`{call}` in a select inside a loop leaks a timer per iteration ({why})"
    msg = template.format(call=_short(text(call)), dur=_short(text(arg)) if arg is not None else "its duration",
                          why=why, func=scope.name)
    return ctx.finding(gofile.source, call, msg, level=level, function=scope.name,
                       related=[(gofile.source, culprit.children[0], "the loop")])


def _select_arm(call, loop, anc):
    """(select statement, the arm receiving the timer) when the timer is received in a select arm:
    `case <-time.After(d):`, or `t := time.After(d)` in the loop body and `case <-t:`.
    anc: call's ancestors, innermost first."""
    i = 0
    while i < len(anc) and anc[i].type == "parenthesized_expression":
        i += 1
    n = anc[i] if i < len(anc) else None
    if n is not None and n.type == "unary_expression" and text(n.child_by_field_name("operator")) == "<-":
        stmt = anc[i + 1] if i + 1 < len(anc) else None
        if stmt is not None and stmt.type == "receive_statement":
            arm = anc[i + 2] if i + 2 < len(anc) else None
            if arm is not None and arm.type == "communication_case" and i + 3 < len(anc):
                return anc[i + 3], arm
        return None
    decl = anc[i + 1] if n is not None and n.type == "expression_list" and i + 1 < len(anc) else None
    if decl is not None and decl.type in ("short_var_declaration", "assignment_statement"):
        right, left = decl.child_by_field_name("right"), decl.child_by_field_name("left")
        if right is None or left is None or right.id != n.id:
            return None
        idx = [c.id for c in n.named_children].index(call.id) if call.id in [c.id for c in n.named_children] else -1
        if idx < 0 or idx >= len(left.named_children) or left.named_children[idx].type != "identifier":
            return None
        name = text(left.named_children[idx])
        body = loop.child_by_field_name("body")
        for arm in walk(body, prune=lambda x: x.type in _FUNCS) if body is not None else ():
            if arm.type != "communication_case" or arm.start_byte < decl.end_byte:
                continue
            comm = arm.child_by_field_name("communication")
            if comm is None or comm.type != "receive_statement":
                continue
            right = comm.child_by_field_name("right")
            if right is not None and right.type == "unary_expression" \
                    and text(right.child_by_field_name("operand")) == name:
                return arm.parent, arm
    return None


def _arm_iterates(ctx, scope, arm, loop, signal_re=None) -> bool:
    """Can the loop start another iteration after this (non-timer) arm ran? An arm that sets a
    variable of the loop's condition from the channel or to a constant (`case errc = <-quit:` under
    `for errc == nil`, `done = true` under `for !done`) is taken to end the loop."""
    if _assigns_condition(arm, loop) or _receives_signal(arm, signal_re):
        return False
    return loops.iterates_after(ctx, arm, loop, scope)


def _receives_signal(arm, signal_re) -> bool:
    """Does the arm receive from a shutdown signal (`ctx.Done()`, `stopc`, `s.quit`)? Such a channel,
    once closed, is ready for ever: code that goes round the loop after it ends the loop elsewhere."""
    comm = arm.child_by_field_name("communication")
    if comm is None or comm.type != "receive_statement":
        return False
    right = comm.child_by_field_name("right")
    chan = right.child_by_field_name("operand") if right is not None and right.type == "unary_expression" else None
    if chan is None:
        return False
    if chan.type == "call_expression":
        fn = chan.child_by_field_name("function")
        return fn is not None and fn.type == "selector_expression" and text(fn.child_by_field_name("field")) == "Done"
    name = text(chan.child_by_field_name("field")) if chan.type == "selector_expression" else text(chan)
    return bool(signal_re is not None and chan.type in ("identifier", "selector_expression") and signal_re.search(name))



def _assigns_condition(arm, loop) -> bool:
    cond = None
    for c in loop.named_children:
        if c.type == "for_clause":
            cond = c.child_by_field_name("condition")
            break
        if c.type not in ("block", "comment", "range_clause"):
            cond = c
            break
    if cond is None:
        return False
    names = {text(n) for n in walk(cond) if n.type == "identifier"}
    for n in walk(arm, prune=lambda x: x.type in _FUNCS):
        targets = []
        if n.type == "receive_statement" and any(c.type == "=" for c in n.children):
            left = n.child_by_field_name("left")
            targets = left.named_children if left is not None else []
        elif n.type == "assignment_statement" and text(n.child_by_field_name("operator")) == "=":
            # a flag set to a constant (`done = true`), not a counter or a list that grows
            left, right = n.child_by_field_name("left"), n.child_by_field_name("right")
            if left is not None and right is not None and len(left.named_children) == len(right.named_children):
                targets = [t for t, v in zip(left.named_children, right.named_children)
                           if v.type in ("true", "false", "nil", "int_literal", "interpreted_string_literal")]
        if any(t.type == "identifier" and text(t) in names for t in targets):
            return True
    return False


# ------------------------------------------------------------------------------------- time.Tick

def _tick(ctx, gofile, call, why, messages, max_fixed, level, skip_main):
    anc = loops.ancestors_of(call, gofile.source.root)  # innermost first
    func = loops.enclosing_function(call, None, anc)
    if func is None:
        return None  # a package-level ticker lives as long as the program: fine
    scope = facts.scope_at(ctx, func)
    if scope is None:
        return None
    name = scope.name
    stmt = loops.statement_of(call, None, anc)
    resolve = loops.constants(ctx, scope)
    for loop in _body_loops(call, anc):
        if stmt is None or not loops.iterates_after(ctx, stmt, loop, scope):
            continue
        count = loops.fixed_iterations(loop, resolve)
        if count is not None and count <= max_fixed:
            continue
        template = messages.get("tick-in-loop") or "`{call}` inside a loop leaks a ticker per iteration ({why})"
        msg = template.format(call=_short(text(call)), why=why, func=name, dur="")
        return ctx.finding(gofile.source, call, msg, level=level, function=name,
                           related=[(gofile.source, loop.children[0], "the loop")])
    if skip_main and gofile.package == "main":
        return None
    if func.type == "function_declaration" and text(func.child_by_field_name("name")) == "init":
        return None
    if not loops.can_return(ctx, func):
        return None  # an endless function: one ticker for the program's life (SA1015 agrees)
    template = messages.get("tick-returns") or "`{call}` in {func}, which can return, leaks its ticker ({why})"
    msg = template.format(call=_short(text(call)), why=why, func=name, dur="")
    return ctx.finding(gofile.source, call, msg, level=level, function=name)


# ----------------------------------------------------------------------------------------- helpers

_inside = loops.inside


def _body_loops(node, anc) -> list:
    return loops.body_loops(node, None, anc)


def _first_arg(call):
    args = call.child_by_field_name("arguments")
    return args.named_children[0] if args is not None and args.named_children else None


def _short(s: str, limit: int = 60) -> str:
    one = " ".join(s.split())
    return one if len(one) <= limit else one[: limit - 3] + "..."


def _constants(ctx) -> dict:
    """The package's constants: name -> (file, value expression), for durations like
    `const refreshCycle = 3 * time.Second`."""
    consts = ctx.shared.get("cl106.consts")
    if consts is None:
        consts = ctx.shared["cl106.consts"] = {}
        for gf in ctx.package.files:
            if b"const" not in gf.source.data:
                continue
            for decl in gf.source.root.named_children:
                if decl.type != "const_declaration":
                    continue
                for spec in decl.named_children:
                    if spec.type != "const_spec":
                        continue
                    names = spec.children_by_field_name("name")
                    value = spec.child_by_field_name("value")
                    if value is None or len(value.named_children) != len(names):
                        continue
                    for n, v in zip(names, value.named_children):
                        consts.setdefault(text(n), (gf, v))
    return consts


def _locals(gofile, anc) -> dict:
    """Variables of the function around a node (anc: its ancestors; the outermost function: closures
    see its variables) assigned exactly once, by `name := value` (`internalTimeout := time.Second`):
    they behave as constants. Shadowing is ignored: a name declared twice counts as assigned twice."""
    funcs = [n for n in anc if n.type in _FUNCS]
    func = funcs[-1] if funcs else None  # the outermost: a closure sees the variables around it
    body = func.child_by_field_name("body") if func is not None else None
    if body is None:
        return {}
    seen: dict[str, list] = {}
    for n in walk(body):
        if n.type in ("short_var_declaration", "assignment_statement"):
            left, right = n.child_by_field_name("left"), n.child_by_field_name("right")
            lhs = left.named_children if left is not None else []
            rhs = right.named_children if right is not None else []
            for i, target in enumerate(lhs):
                if target.type == "identifier":
                    value = rhs[i] if n.type == "short_var_declaration" and len(rhs) == len(lhs) else None
                    seen.setdefault(text(target), []).append(value)
        elif n.type in ("inc_statement", "dec_statement") and n.named_children:
            seen.setdefault(text(n.named_children[0]), []).append(None)
        elif n.type == "unary_expression" and text(n.child_by_field_name("operator")) == "&":
            operand = n.child_by_field_name("operand")
            if operand is not None and operand.type == "identifier":
                seen.setdefault(text(operand), []).append(None)  # may be written through the pointer
    return {name: (gofile, values[0]) for name, values in seen.items() if len(values) == 1 and values[0] is not None}


def _seconds(gofile, expr, consts=None) -> float | None:
    """A constant duration in seconds (`30 * time.Second`, `time.Duration(5) * time.Minute`, `1e9`),
    or None when it is not a constant the syntax shows."""
    if expr is None:
        return None
    size = 0
    for _ in walk(expr):
        size += 1
        if size > 64:
            return None  # not a small constant expression (and keeps the evaluation shallow)
    value = _eval(gofile, expr, consts or {}, 0)
    if value is None:
        return None
    number, dim = value
    return number if dim == 1 else number * 1e-9 if dim == 0 else None


def _eval(gofile, e, consts, depth):
    """(number, dimension): dimension 1 for a duration in seconds, 0 for a plain number. Constants of
    the package are followed a few levels deep."""
    t = e.type
    if t == "identifier":
        found = consts.get(text(e))
        if found is None or depth >= 4:
            return None
        gf, value = found
        if sum(1 for _ in zip(range(65), walk(value))) > 64:
            return None
        return _eval(gf, value, consts, depth + 1)
    if t == "parenthesized_expression":
        return _eval(gofile, e.named_children[0], consts, depth) if e.named_children else None
    if t in ("int_literal", "float_literal"):
        try:
            s = text(e).replace("_", "")
            return (float(int(s, 0)) if t == "int_literal" else float(s)), 0
        except ValueError:
            return None
    if t == "selector_expression":
        operand = e.child_by_field_name("operand")
        unit = _UNITS.get(text(e.child_by_field_name("field")))
        if unit is not None and operand is not None and operand.type == "identifier" \
                and gofile.import_path(text(operand)) == "time":
            return unit, 1
        return None
    if t == "call_expression":  # time.Duration(x)
        fn = e.child_by_field_name("function")
        args = e.child_by_field_name("arguments")
        if fn is not None and fn.type == "selector_expression" and text(fn.child_by_field_name("field")) == "Duration" \
                and gofile.import_path(text(fn.child_by_field_name("operand"))) == "time" \
                and args is not None and len(args.named_children) == 1:
            inner = _eval(gofile, args.named_children[0], consts, depth)
            if inner is None:
                return None
            return (inner[0] * 1e-9, 1) if inner[1] == 0 else inner
        return None
    if t == "binary_expression":
        op = text(e.child_by_field_name("operator"))
        a = _eval(gofile, e.child_by_field_name("left"), consts, depth)
        b = _eval(gofile, e.child_by_field_name("right"), consts, depth)
        if a is None or b is None:
            return None
        if op == "*":
            dim = a[1] + b[1]
            return (a[0] * b[0], dim) if dim <= 1 else None
        if op == "/":
            if b[0] == 0:
                return None
            dim = a[1] - b[1]
            return (a[0] / b[0], dim) if dim in (0, 1) else None
        if op in ("+", "-"):
            if a[1] != b[1]:
                # untyped constants next to a duration are nanoseconds
                a = (a[0] * 1e-9, 1) if a[1] == 0 else a
                b = (b[0] * 1e-9, 1) if b[1] == 0 else b
            return (a[0] + b[0] if op == "+" else a[0] - b[0]), a[1]
    return None
