"""Human output: `path:line:col: CL101 [unclosed-resource] message`, a code frame, a summary."""

from __future__ import annotations

import os
from collections import Counter

from closelint.findings import Finding

_COLORS = {"error": "\033[1;31m", "warning": "\033[1;33m", "note": "\033[1;36m",
           "path": "\033[1m", "code": "\033[1;35m", "dim": "\033[2m", "reset": "\033[0m"}


def use_color(stream) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return hasattr(stream, "isatty") and stream.isatty()


def display_path(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


class _Paint:
    def __init__(self, on: bool):
        self.on = on

    def __call__(self, what: str, s: str) -> str:
        return f"{_COLORS[what]}{s}{_COLORS['reset']}" if self.on else s


def headline(f: Finding, paint=None) -> str:
    paint = paint or _Paint(False)
    loc = f.location
    where = paint("path", f"{display_path(loc.path)}:{loc.line}:{loc.column}:")
    return f"{where} {paint('code', f.code)} [{f.name}] {paint(f.level, f.level)}: {f.message}"


def _frame(f: Finding, lines_of, paint) -> list[str]:
    loc = f.location
    line = lines_of(loc.path, loc.line)
    if line is None:
        return []
    width = len(str(loc.line))
    expanded = line.expandtabs(4)
    # Carets under the span on its first line (tabs widened like the line itself).
    start = len(line[: loc.column - 1].expandtabs(4))
    end_col = loc.end_column if loc.end_line == loc.line else len(line) + 1
    end = max(start + 1, len(line[: end_col - 1].expandtabs(4)))
    gutter = paint("dim", " " * width + " |")
    return [gutter, paint("dim", f"{loc.line} |") + f" {expanded}",
            gutter + " " + " " * start + paint(f.level, "^" * (end - start))]


def render(findings: list[Finding], *, concise: bool, color: bool, statistics: bool,
           suppressed_count: int = 0, files: int = 0) -> str:
    paint = _Paint(color)
    cache: dict[str, list[str] | None] = {}

    def lines_of(path: str, line: int):
        if path not in cache:
            try:
                with open(path, "rb") as fh:
                    cache[path] = fh.read().decode("utf-8", "replace").splitlines()
            except OSError:
                cache[path] = None
        lines = cache[path]
        return lines[line - 1] if lines and 0 < line <= len(lines) else None

    out = []
    for f in findings:
        out.append(headline(f, paint))
        if concise:
            continue
        out += _frame(f, lines_of, paint)
        for r in f.related:
            out.append(f"  {paint('dim', 'related:')} {display_path(r.path)}:{r.line}:{r.column}: {r.message}")
        out.append("")
    out += summary(findings, statistics=statistics, suppressed_count=suppressed_count, files=files)
    return "\n".join(out) + "\n"


def summary(findings: list[Finding], *, statistics: bool, suppressed_count: int, files: int) -> list[str]:
    if not findings:
        tail = f" ({suppressed_count} suppressed)" if suppressed_count else ""
        return [f"No findings in {files} file{'s' if files != 1 else ''}{tail}."]
    by_rule = Counter((f.code, f.name) for f in findings)
    n = len(findings)
    lines = [f"Found {n} finding{'s' if n != 1 else ''} in {files} file{'s' if files != 1 else ''}"
             + (f" ({suppressed_count} suppressed)" if suppressed_count else "") + "."]
    if statistics or len(by_rule) > 1:
        width = max(len(str(c)) for c in by_rule.values())
        for (code, name), count in sorted(by_rule.items()):
            lines.append(f"{count:>{width}}  {code}  {name}")
    return lines
