"""SARIF 2.1.0 for GitHub code scanning, built on sarif-om's object model.

sarif-om's classes carry each SARIF property name in their attrs field metadata
(`schema_property_name`). attr.asdict would give snake_case keys and nulls (invalid SARIF), and
stripping defaults would drop an explicit level="warning", so objects are made through _new(), which
remembers which fields were set, and serialized by walking exactly those fields.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from closelint import __version__
from closelint.findings import Finding, Location

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/closelint/closelint"
_SET = "_closelint_set"
_EXTRA = "_closelint_extra"
_PROBLEM_SEVERITY = {"error": "error", "warning": "warning", "note": "recommendation"}


def _new(cls, **fields):
    obj = cls(**fields)
    object.__setattr__(obj, _SET, tuple(k for k, v in fields.items() if v is not None))
    return obj


def _bag(tags=None, **extra):
    import sarif_om as om

    bag = _new(om.PropertyBag, tags=tags)
    object.__setattr__(bag, _EXTRA, extra)
    return bag


def to_jsonable(obj):
    """sarif-om objects -> plain JSON values, keyed by each field's schema_property_name."""
    import attr

    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    if not attr.has(type(obj)):
        return obj
    out = {}
    chosen = getattr(obj, _SET, ())
    for f in attr.fields(type(obj)):
        if f.name in chosen:
            value = getattr(obj, f.name)
            if value is not None:
                out[f.metadata.get("schema_property_name", f.name)] = to_jsonable(value)
    for k, v in getattr(obj, _EXTRA, {}).items():
        out[k] = to_jsonable(v)
    return out


def repo_root(paths: list[str]) -> Path:
    """%SRCROOT%: the git work tree holding the scanned paths (found by .git, never by running git),
    else the folder they have in common."""
    folders = []
    for p in paths or ["."]:
        real = Path(os.path.realpath(p))
        folders.append(real if real.is_dir() else real.parent)
    common = Path(os.path.commonpath([str(f) for f in folders]))
    for folder in (common, *common.parents):
        if (folder / ".git").exists():
            return folder
    return common


def _artifact(path: str, root: Path):
    """Repository-relative with %SRCROOT% (what GitHub needs); an absolute file:// URI otherwise."""
    import sarif_om as om

    real = Path(os.path.realpath(path))
    try:
        return _new(om.ArtifactLocation, uri=real.relative_to(root).as_posix(), uri_base_id="%SRCROOT%")
    except ValueError:
        return _new(om.ArtifactLocation, uri=real.as_uri())


def _uri(path: str, root: Path) -> str:
    real = Path(os.path.realpath(path))
    try:
        return real.relative_to(root).as_posix()
    except ValueError:
        return real.as_uri()


def _physical(loc: Location, root: Path):
    import sarif_om as om

    region = _new(om.Region, start_line=loc.line, start_column=loc.column_utf16,
                  end_line=loc.end_line, end_column=loc.end_column_utf16)
    return _new(om.PhysicalLocation, artifact_location=_artifact(loc.path, root), region=region)


def fingerprint(f: Finding, root: Path) -> str:
    """No line numbers: code, file, enclosing function and the normalized flagged statement."""
    material = "\0".join((f.code, _uri(f.location.path, root), f.function, f.snippet))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


def build(findings: list[Finding], rules: list, notifications: list, scanned: list[str], *,
          include_suppressed: bool = False, suppressed: list[Finding] = ()) -> dict:
    import sarif_om as om

    root = repo_root(scanned)
    descriptors = []
    index = {}
    for i, rule in enumerate(rules):
        index[rule.code] = i
        descriptors.append(_new(
            om.ReportingDescriptor,
            id=rule.code,
            name=rule.name,
            short_description=_new(om.MultiformatMessageString, text=rule.short_description[:1024]),
            full_description=_new(om.MultiformatMessageString, text=rule.full_description[:1024]),
            help=_new(om.MultiformatMessageString, text=rule.help_text, markdown=rule.help_markdown),
            default_configuration=_new(om.ReportingConfiguration, level=rule.level),
            properties=_bag(tags=list(rule.tags)[:20], precision=rule.precision,
                            **{"problem.severity": _PROBLEM_SEVERITY[rule.level]}),
        ))
    results = []
    seen: dict[str, int] = {}
    batch = list(findings) + (list(suppressed) if include_suppressed else [])
    batch.sort(key=Finding.sort_key)
    for f in batch:
        fp = fingerprint(f, root)
        seen[fp] = seen.get(fp, 0) + 1
        related = [
            _new(om.Location, id=n, physical_location=_physical(r, root),
                 message=_new(om.Message, text=r.message) if r.message else None)
            for n, r in enumerate(f.related)
        ] or None
        results.append(_new(
            om.Result,
            rule_id=f.code,
            rule_index=index.get(f.code),
            level=f.level,
            message=_new(om.Message, text=f.message),
            locations=[_new(om.Location, physical_location=_physical(f.location, root))],
            related_locations=related,
            partial_fingerprints={"primaryLocationLineHash": f"{fp}:{seen[fp]}"},
            suppressions=[_new(om.Suppression, kind="inSource", justification=f.suppressed or None)]
            if f.suppressed is not None else None,
        ))
    notes = [
        _new(om.Notification,
             level=n.level,
             message=_new(om.Message, text=n.message),
             locations=[_new(om.Location, physical_location=_new(
                 om.PhysicalLocation,
                 artifact_location=_artifact(n.path, root),
                 region=_new(om.Region, start_line=n.line) if n.line else None))])
        for n in notifications
    ]
    invocation = _new(
        om.Invocation,
        execution_successful=not any(n.level == "error" for n in notifications),
        tool_execution_notifications=notes or None,
    )
    run = _new(
        om.Run,
        tool=_new(om.Tool, driver=_new(
            om.ToolComponent, name="closelint", version=__version__, semantic_version=__version__,
            information_uri=INFORMATION_URI, rules=descriptors)),
        automation_details=_new(om.RunAutomationDetails, id="closelint/"),
        original_uri_base_ids={"%SRCROOT%": {"uri": root.as_uri() + "/"}},
        column_kind="utf16CodeUnits",
        invocations=[invocation],
        results=results,
    )
    log = _new(om.SarifLog, version="2.1.0", schema_uri=SCHEMA_URI, runs=[run])
    return to_jsonable(log)


def render(*args, **kwargs) -> str:
    return json.dumps(build(*args, **kwargs), indent=2, ensure_ascii=False) + "\n"
