"""Shared test helpers: the analysistest-style fixture runner and the SARIF schema validator."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SCHEMA = Path(os.environ.get("CLOSELINT_SARIF_SCHEMA", ROOT.parent / "shared" / "schemas" / "sarif-schema-2.1.0.json"))

# `// want CL101` or `# want CL201` (TOML); several codes may follow; `CL101:error` also asserts the level.
WANT = re.compile(rb"(?://|#)\s*want((?:\s+CL\d{3}(?::(?:error|warning|note))?)+)\s*$")


# `// want notification` (`# want notification`): the scan must name this file in one notification
# (unreadable, undecodable, unparsable input) and go on.
WANT_NOTE = re.compile(rb"(?://|#)\s*want notification\b")


def notifications_wanted(folder: Path) -> set[str]:
    return {path.relative_to(folder).as_posix() for path in sorted(folder.rglob("*"))
            if path.is_file() and WANT_NOTE.search(path.read_bytes())}


def wants_of(folder: Path) -> tuple[set, dict]:
    """({(relative path, line, code)}, {(path, line, code): level}) from the want comments under folder."""
    wants, levels = set(), {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix not in (".go", ".rs", ".toml", ".lock", ".mod"):
            continue
        rel = path.relative_to(folder).as_posix()
        for i, line in enumerate(path.read_bytes().split(b"\n"), start=1):
            m = WANT.search(line)
            if not m:
                continue
            for token in m.group(1).decode().split():
                code, _, level = token.partition(":")
                wants.add((rel, i, code))
                if level:
                    levels[(rel, i, code)] = level
    return wants, levels


def run_scan(folder: Path, paths: list[str] | None = None, **kwargs):
    """The real pipeline on folder, with folder's own closelint.toml when it has one."""
    from closelint.config import find_config, load_config
    from closelint.engine import scan

    cfg_path = find_config(folder / "x") if (folder / "closelint.toml").exists() else None
    cfg = load_config(cfg_path, start=folder)
    kwargs.setdefault("jobs", 1)
    kwargs.setdefault("use_cache", False)
    return scan(paths or [str(folder)], cfg, **kwargs)


def got_of(result, folder: Path) -> tuple[set, dict]:
    got, levels = set(), {}
    for f in result.findings:
        key = (Path(f.location.path).relative_to(folder).as_posix(), f.location.line, f.code)
        got.add(key)
        levels[key] = f.level
    return got, levels


@lru_cache(maxsize=1)
def sarif_validator():
    import jsonschema

    if not SCHEMA.is_file():
        pytest.fail(f"SARIF schema not found at {SCHEMA} (set CLOSELINT_SARIF_SCHEMA)")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return jsonschema.Draft4Validator(schema)


def assert_valid_sarif(doc: dict) -> None:
    errors = sorted(sarif_validator().iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "invalid SARIF:\n" + "\n".join(
        f"  at {'/'.join(map(str, e.path))}: {e.message}" for e in errors[:10])


def closelint(*args, cwd=None, env=None, input=None, timeout=60):
    """Run the installed CLI the way a user does (python -m closelint), capturing output."""
    full_env = {**os.environ, "NO_COLOR": "1"}
    full_env.pop("FORCE_COLOR", None)
    for key, value in (env or {}).items():  # a None value removes the variable
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    return subprocess.run([sys.executable, "-m", "closelint", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, input=input)
