"""CL101 unclosed-resource: a first, simple analysis (the catalog's package functions, bound to a
local variable that is never released, returned or passed on in the function)."""

from __future__ import annotations

from closelint.treeutil import text, walk

TOKENS = (b"os.",)

_FUNCS = ("function_declaration", "method_declaration", "func_literal")


def check(ctx):
    by_call = {(r["package"], r["function"]): r for r in ctx.catalogs.get("resources", []) if "function" in r}
    for gofile in ctx.package.files:
        if not gofile.source.is_target:
            continue
        for node in walk(gofile.source.root):
            if node.type not in ("short_var_declaration", "assignment_statement"):
                continue
            right = node.child_by_field_name("right")
            left = node.child_by_field_name("left")
            if right is None or left is None or not right.named_children:
                continue
            call = right.named_children[0]
            if call.type != "call_expression":
                continue
            fn = call.child_by_field_name("function")
            if fn is None or fn.type != "selector_expression":
                continue
            pkg = gofile.import_path(text(fn.child_by_field_name("operand")))
            entry = by_call.get((pkg, text(fn.child_by_field_name("field"))))
            if entry is None or not left.named_children:
                continue
            var = text(left.named_children[0])
            func = next((a for a in _ancestors(node) if a.type in _FUNCS), None)
            if func is None:
                continue
            if var == "_" or not _released_or_handed_off(func, node, var, entry["release"]):
                name = var if var != "_" else "it"
                yield ctx.finding(
                    gofile.source, call,
                    f"{entry['what']} from {text(fn)} is never closed: {entry['consequence']}; "
                    f"add `defer {name}.{entry['release'][0]}()` after creating it",
                    function=_func_name(func))


def _ancestors(node):
    n = node.parent
    while n is not None:
        yield n
        n = n.parent


def _func_name(func) -> str:
    name = func.child_by_field_name("name")
    return text(name) if name is not None else "func literal"


def _released_or_handed_off(func, decl, var: str, release: list[str]) -> bool:
    body = func.child_by_field_name("body")
    for n in walk(body):
        if n.start_byte <= decl.start_byte:
            continue
        if n.type == "identifier" and text(n) == var:
            parent = n.parent
            if parent.type == "selector_expression":
                field = text(parent.child_by_field_name("field"))
                if field in release:
                    return True
            elif parent.type == "expression_list" and parent.parent.type == "assignment_statement" \
                    and text(parent.parent.child_by_field_name("left")).strip("_, ") == "":
                continue  # `_ = f` only silences the compiler
            elif parent.type in ("argument_list", "expression_list", "return_statement",
                                 "keyed_element", "literal_element", "send_statement"):
                return True
    return False
