"""GitHub Actions workflow commands: `::warning file=…,line=…,col=…,title=CL101::message`."""

from __future__ import annotations

from closelint.findings import Finding
from closelint.report.text import display_path

_COMMAND = {"error": "error", "warning": "warning", "note": "notice"}


def _data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(s: str) -> str:
    return _data(s).replace(":", "%3A").replace(",", "%2C")


def render(findings: list[Finding]) -> str:
    out = []
    for f in findings:
        loc = f.location
        props = (f"file={_prop(display_path(loc.path))},line={loc.line},col={loc.column},"
                 f"endLine={loc.end_line},endColumn={loc.end_column},title={f.code}")
        out.append(f"::{_COMMAND[f.level]} {props}::{_data(f.message)}")
    return "\n".join(out) + ("\n" if out else "")
