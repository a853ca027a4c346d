"""`cfg(...)` expressions and target triples of `[target.<spec>.dependencies]`, evaluated on a few
representative platforms.

Predicates closelint cannot know (`feature = "x"`, custom cfgs such as `tokio_unstable`) are unknown,
and an unknown makes the expression "maybe": such a dependency may apply, so it counts.
"""

from __future__ import annotations

import re
from functools import lru_cache

# name -> cfg facts. Linux stands for every Unix that is not Apple (native-tls and curl use OpenSSL
# there); android and freebsd are listed so that `target_os = "android"` is not "nowhere".
PLATFORMS: dict[str, dict[str, object]] = {
    "linux": {"unix": True, "windows": False, "target_os": "linux", "target_family": "unix",
              "target_vendor": "unknown"},
    "android": {"unix": True, "windows": False, "target_os": "android", "target_family": "unix",
                "target_vendor": "unknown"},
    "freebsd": {"unix": True, "windows": False, "target_os": "freebsd", "target_family": "unix",
                "target_vendor": "unknown"},
    "macos": {"unix": True, "windows": False, "target_os": "macos", "target_family": "unix",
              "target_vendor": "apple"},
    "ios": {"unix": True, "windows": False, "target_os": "ios", "target_family": "unix",
            "target_vendor": "apple"},
    "windows": {"unix": False, "windows": True, "target_os": "windows", "target_family": "windows",
                "target_vendor": "pc"},
    "wasm": {"unix": False, "windows": False, "target_os": "unknown", "target_family": "wasm",
             "target_vendor": "unknown"},
}
ALL = frozenset(PLATFORMS)
OPENSSL_LIKE = frozenset({"linux", "android", "freebsd"})  # neither Apple, Windows nor wasm
APPLE_WINDOWS = frozenset({"macos", "ios", "windows"})

_TOKEN = re.compile(r'\s*(?:(?P<ident>[A-Za-z_][A-Za-z0-9_]*)|(?P<str>"(?:[^"\\]|\\.)*")|(?P<p>[(),=]))')


class CfgError(ValueError):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise CfgError(f"cannot read cfg expression {text!r}")
        pos = m.end()
        if m.group("ident"):
            out.append(("id", m.group("ident")))
        elif m.group("str"):
            out.append(("str", m.group("str")[1:-1]))
        else:
            out.append(("p", m.group("p")))
    return out


def _parse(tokens: list) -> object:
    """An iterative parser: ("all"|"any", [..]) | ("not", [x]) | ("pred", name, value|None)."""
    pos = 0

    def expect(kind, value=None):
        nonlocal pos
        if pos >= len(tokens) or tokens[pos][0] != kind or (value is not None and tokens[pos][1] != value):
            raise CfgError("malformed cfg expression")
        pos += 1
        return tokens[pos - 1][1]

    # explicit stack of open groups: [op, children]
    root: list = []
    stack: list = [["root", root]]
    while True:
        name = expect("id")
        if pos < len(tokens) and tokens[pos] == ("p", "(") and name in ("all", "any", "not"):
            pos += 1
            group = [name, []]
            stack[-1][1].append(group)
            stack.append(group)
            if pos < len(tokens) and tokens[pos] == ("p", ")"):
                pass  # empty group: all() / any()
            else:
                continue
        else:
            value = None
            if pos < len(tokens) and tokens[pos] == ("p", "="):
                pos += 1
                value = expect("str")
            stack[-1][1].append(("pred", name, value))
        # close groups
        while True:
            if pos < len(tokens) and tokens[pos] == ("p", ")") and len(stack) > 1:
                pos += 1
                stack.pop()
                continue
            break
        if pos < len(tokens) and tokens[pos] == ("p", ",") and len(stack) > 1:
            pos += 1
            if pos < len(tokens) and tokens[pos] == ("p", ")"):  # trailing comma
                while pos < len(tokens) and tokens[pos] == ("p", ")") and len(stack) > 1:
                    pos += 1
                    stack.pop()
                if len(stack) == 1:
                    break
            continue
        break
    if len(stack) != 1 or pos != len(tokens) or len(root) != 1:
        raise CfgError("malformed cfg expression")
    return root[0]


def _eval(expr, facts: dict) -> bool | None:
    """Kleene logic: True, False, or None (unknown). Iterative over nesting depth."""
    # post-order evaluation with an explicit stack
    results: dict[int, bool | None] = {}
    stack = [(expr, False)]
    while stack:
        node, done = stack.pop()
        if isinstance(node, tuple):  # predicate
            _, name, value = node
            results[id(node)] = _pred(name, value, facts)
            continue
        op, children = node
        if not done:
            stack.append((node, True))
            stack.extend((c, False) for c in children)
            continue
        vals = [results[id(c)] for c in children]
        if op == "not":
            v = vals[0] if len(vals) == 1 else None
            results[id(node)] = None if v is None else not v
        elif op == "all":
            results[id(node)] = False if False in vals else (None if None in vals else True)
        else:  # any
            results[id(node)] = True if True in vals else (None if None in vals else False)
    return results[id(expr)]


def _pred(name: str, value: str | None, facts: dict) -> bool | None:
    if value is None:
        if name in ("unix", "windows"):
            return bool(facts[name])
        return None  # test, debug_assertions, custom cfgs: unknown
    if name in ("target_os", "target_family", "target_vendor"):
        if name == "target_family" and value == "wasm":
            return facts["target_family"] == "wasm"
        return facts[name] == value
    if name == "target_arch":
        if value.startswith("wasm"):
            return facts["target_family"] == "wasm"
        return False if facts["target_family"] == "wasm" else None
    return None  # target_env, target_arch, pointer width, feature = "...": unknown here


@lru_cache(maxsize=1024)
def platforms(spec: str | None) -> frozenset[str]:
    """Platforms on which a `[target.<spec>]` table (or a table row's `targets`) may apply.

    None or "" means every platform. An unreadable spec counts as every platform (it may apply).
    """
    if not spec:
        return ALL
    spec = spec.strip()
    if spec.startswith("cfg("):
        try:
            if not spec.endswith(")"):
                raise CfgError(spec)
            expr = _parse(_tokens(spec[4:-1]))
        except CfgError:
            return ALL
        return frozenset(p for p, facts in PLATFORMS.items() if _eval(expr, facts) is not False)
    return _triple(spec)


def _triple(triple: str) -> frozenset[str]:
    t = triple.lower()
    if "wasm" in t:
        return frozenset({"wasm"})
    if "windows" in t:
        return frozenset({"windows"})
    if "apple" in t or "darwin" in t:
        return frozenset({"ios"} if "ios" in t else {"macos"})
    if "android" in t:
        return frozenset({"android"})
    if "freebsd" in t:
        return frozenset({"freebsd"})
    return frozenset({"linux"})
