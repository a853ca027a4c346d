"""JSON output: a stable, documented list of findings (see README, "JSON output")."""

from __future__ import annotations

import json

from closelint.findings import Finding, Location
from closelint.report.text import display_path


def _loc(loc: Location) -> dict:
    return {"path": display_path(loc.path), "line": loc.line, "column": loc.column,
            "end_line": loc.end_line, "end_column": loc.end_column}


def render(findings: list[Finding]) -> str:
    items = []
    for f in findings:
        item = {"code": f.code, "name": f.name, "level": f.level, **_loc(f.location),
                "message": f.message, "function": f.function,
                "related": [{**_loc(r), "message": r.message} for r in f.related]}
        if f.suppressed is not None:
            item["suppressed"] = f.suppressed
        items.append(item)
    return json.dumps(items, indent=2, ensure_ascii=False) + "\n"
