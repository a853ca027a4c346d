"""What a worker does with one unit: read its files once, let every enabled rule look at the same
lazily parsed trees, apply inline suppressions, and send back plain values (and store them in the
cache). Imported by the engine only when something is to be analysed: a re-scan served from the
cache never loads it, nor the rules.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import TYPE_CHECKING

from closelint import suppress
from closelint.context import RuleContext, UnitContext
from closelint.files import read_file
from closelint.findings import Notification, UnitResult
from closelint.rulebook import rules_for
from closelint.source import SourceFile

if TYPE_CHECKING:
    from closelint.engine import Settings, Unit

_GENERATED = re.compile(rb"(?m)^// Code generated .* DO NOT EDIT\.\r?$")
_BINARY_PROBE = 8192

_SETTINGS: Settings | None = None  # set in each worker by init_worker


def init_worker(settings: Settings) -> None:
    global _SETTINGS
    _SETTINGS = settings


def _unit_files(unit: Unit):
    """(path, is_target, bytes or the OSError) for every file of the unit, targets first."""
    for path, is_target in unit.files():
        try:
            yield path, is_target, read_file(path)
        except OSError as exc:
            yield path, is_target, exc


def run_unit(job: tuple[Unit, str]) -> UnitResult:
    """Analyse one unit (in a worker); key is its cache key, "" when it is not cached."""
    unit, key = job
    settings = _SETTINGS
    result = UnitResult()
    rules = rules_for(unit.kind, settings.codes)
    if not rules:
        return result
    files = list(_unit_files(unit))
    sources = _load_sources(unit, files, result.notifications)
    targets = {str(s.path): s for s in sources if s.is_target}
    if targets:
        _analyse(unit, sources, targets, rules, settings, result)
    if key:
        from closelint.cache import Cache

        Cache(Path(settings.cache_dir)).put(key, {"findings": [f.to_plain() for f in result.findings],
                                                  "notifications": [n.to_plain() for n in result.notifications],
                                                  "observed": result.observed})
    return result


def _analyse(unit, sources, targets, rules, settings, result):
    uctx = UnitContext(unit.kind, Path(unit.folder), sources, result.notifications)
    result.observed = uctx.fs.seen
    covered: dict[str, dict] = {}
    for rule in rules:
        module = importlib.import_module(rule.module)
        tokens = getattr(module, "TOKENS", None)
        if tokens and not any(t in s.data for s in targets.values() for t in tokens):
            continue  # byte-level prefilter: nothing in these files can match
        ctx = RuleContext(uctx, rule, settings.options.get(rule.code, {}), settings.catalogs.get(rule.code, {}),
                          settings.catalogs)
        try:
            found = list(module.check(ctx))
        except Exception as exc:  # noqa: BLE001 - a rule's bug must not end the scan
            import traceback

            where = traceback.extract_tb(exc.__traceback__)[-1]
            result.notifications.append(Notification(
                unit.folder, f"internal error in {rule.code} ({type(exc).__name__}: {exc} at "
                             f"{Path(where.filename).name}:{where.lineno}); please report it", "error"))
            continue
        for f in found:
            src = targets.get(f.location.path)
            if src is None:
                continue
            if f.location.path not in covered:
                covered[f.location.path] = suppress.parse(src.lines) if suppress.may_suppress(src.data) else {}
            reason = suppress.suppression_for(covered[f.location.path], f.location.line, f.code)
            result.findings.append(f if reason is None else f.with_(suppressed=reason))


def _load_sources(unit: Unit, files, notes: list[Notification]) -> list[SourceFile]:
    """The unit's files as SourceFiles; unreadable, binary and undecodable ones are named once."""
    sources = []
    for path, is_target, data in files:
        if not isinstance(data, bytes):
            if is_target:
                notes.append(Notification(path, f"cannot read: {data.strerror or data}, skipped"))
            continue
        if b"\0" in data[:_BINARY_PROBE]:
            if is_target:
                notes.append(Notification(path, "binary file, skipped"))
            continue
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            if is_target:
                notes.append(Notification(
                    path, f"not valid UTF-8 (byte {exc.start}); analysed what decoded"))
        src = SourceFile(Path(path), data, is_target=is_target, notes=notes)
        if is_target and src.lang == "go" and _is_generated(data):
            src.is_target = False  # generated code is context, never reported
        sources.append(src)
    return sources


def _is_generated(data: bytes) -> bool:
    head = data[: data.find(b"\npackage ") + 1 or 4096]
    return _GENERATED.search(head) is not None
