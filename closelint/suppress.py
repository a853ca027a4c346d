"""Inline suppressions.

    //closelint:ignore CL101 -- reason        Go and Rust, on the finding's line or the line above
    // closelint:ignore unclosed-resource     codes or names, comma-separated; none means all codes
    //nolint:closelint // reason              golangci-lint's directive: closelint, all, or bare
    # closelint:ignore CL201 -- reason        TOML

A directive on a line of its own covers the next line; at the end of a line of code, that line.
"""

from __future__ import annotations

import re

from closelint.rulebook import canonical_code

ALL = "*"
_CLOSELINT = re.compile(rb"(?://|#)[ \t]*closelint:ignore(?P<codes>(?:[ \t]+(?!--)[\w\-]+(?:[ \t]*,[ \t]*[\w\-]+)*)?)"
                        rb"(?:[ \t]+--[ \t]*(?P<reason>.*?))?[ \t]*$")
_NOLINT = re.compile(rb"//[ \t]*nolint(?::(?P<linters>[\w\-]+(?:,[\w\-]+)*))?(?:[ \t]*//[ \t]*(?P<reason>.*?))?[ \t]*$")


def _directive(line: bytes):
    """(codes, reason, start offset) of the directive on line, or None."""
    m = _CLOSELINT.search(line)
    if m is not None:
        tokens = re.split(r"[,\s]+", m.group("codes").decode("utf-8", "replace").strip())
        codes = {canonical_code(t) or t for t in tokens if t} or {ALL}
        return codes, (m.group("reason") or b"").decode("utf-8", "replace"), m.start()
    m = _NOLINT.search(line)
    if m is not None:
        linters = (m.group("linters") or b"all").decode().split(",")
        if "closelint" in linters or "all" in linters:
            return {ALL}, (m.group("reason") or b"").decode("utf-8", "replace"), m.start()
    return None


def may_suppress(data: bytes) -> bool:
    """Whether a file's text may hold a directive at all (most files hold none: parse is not needed)."""
    return b"closelint:" in data or b"nolint" in data


def parse(lines: list[bytes]) -> dict[int, tuple[set[str], str]]:
    """{1-based line: (codes or {ALL}, reason)} for the lines the directives cover."""
    covered: dict[int, tuple[set[str], str]] = {}
    for i, line in enumerate(lines):
        if b"closelint:" not in line and b"nolint" not in line:
            continue
        found = _directive(line.rstrip(b"\r"))
        if found is None:
            continue
        codes, reason, start = found
        covered.setdefault(i + 1, (set(), reason))[0].update(codes)
        if line[:start].strip() == b"":  # on a line of its own: covers the next line
            covered.setdefault(i + 2, (set(), reason))[0].update(codes)
    return covered


def suppression_for(covered: dict, line: int, code: str) -> str | None:
    """The reason (possibly empty) when code is suppressed on line, else None."""
    entry = covered.get(line)
    if entry and (ALL in entry[0] or code in entry[0]):
        return entry[1]
    return None
