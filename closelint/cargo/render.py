"""TOML values written back as one line: the replacement dependency lines in CL201's messages."""

from __future__ import annotations

import datetime
import json
import re

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def key(k: str) -> str:
    return k if _BARE.match(k) else json.dumps(k, ensure_ascii=False)


def value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # JSON escapes are valid TOML basic-string escapes
    if isinstance(v, (datetime.date, datetime.time, datetime.datetime)):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, dict):
        if not v:
            return "{}"
        return "{ " + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items()) + " }"
    return json.dumps(str(v))


def dependency_line(name: str, spec: dict) -> str:
    """`name = "1.0"` when only a version is left, else `name = { ... }`."""
    if list(spec) == ["version"] and isinstance(spec["version"], str):
        return f"{key(name)} = {value(spec['version'])}"
    return f"{key(name)} = {value(spec)}"
