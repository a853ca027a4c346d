"""The rulebook: one TOML file per rule under rules/ (carried in the wheel as closelint/_rulebook).

A rule exists when its TOML file and its module closelint/checks/<code>_<name>.py both exist; the
TOML holds everything that is data (metadata, help text, options and their defaults, catalog tables),
the module holds only the analysis.
"""

from __future__ import annotations

import re
from collections import namedtuple
from functools import lru_cache
from pathlib import Path

LEVELS = ("error", "warning", "note")
_RULE_FILE = re.compile(r"CL\d{3}-[a-z0-9-]+\.toml")

# Keys of a rule file that are metadata; every other top-level array of tables is a catalog table.
_META_KEYS = {
    "code", "name", "languages", "level", "precision", "tags",
    "short-description", "full-description", "help", "options",
}
_HELP_SECTIONS = (
    ("what-it-does", "What it does"),
    ("why-is-this-bad", "Why is this bad?"),
    ("example", "Example"),
    ("use-instead", "Use instead"),
)


class RulebookError(Exception):
    """A rule file is malformed: a packaging defect, reported as an internal error."""


class Rule(namedtuple("Rule", "code name languages level precision tags short_description full_description "
                             "help options catalogs module source", defaults=({}, {}, "", ""))):
    """One rule, as its rulebook entry (rules/CLxxx-name.toml) describes it. languages and tags are
    tuples; help maps each of _HELP_SECTIONS to markdown; options and catalogs are the entry's
    defaults (a config may add to them); module is the analysis that implements it."""

    __slots__ = ()

    @property
    def help_markdown(self) -> str:
        parts = [f"# {self.code} {self.name}", "", self.full_description.strip(), ""]
        for key, title in _HELP_SECTIONS:
            parts += [f"## {title}", "", self.help[key].strip(), ""]
        return "\n".join(parts).rstrip() + "\n"

    @property
    def help_text(self) -> str:
        """Plain-text help for SARIF `help.text`: the markdown without its fences."""
        lines = [ln for ln in self.help_markdown.splitlines() if not ln.startswith("```")]
        return "\n".join(lines).strip() + "\n"


def rule_files() -> list[Path]:
    """rules/CL123-some-name.toml files (drafts and notes beside them are not rules)."""
    return sorted(p for p in rulebook_dir().glob("CL*.toml") if _RULE_FILE.fullmatch(p.name))


def rulebook_dir() -> Path:
    here = Path(__file__).resolve().parent
    packaged = here / "_rulebook"
    return packaged if packaged.is_dir() else here.parent / "rules"


def _module_name(stem: str) -> str:
    return stem.lower().replace("-", "_")


def _load_rule(path: Path, checks_dir: Path) -> Rule | None:
    try:
        data = _parsed(path.read_bytes())
    except (OSError, ValueError) as exc:  # ValueError: tomllib.TOMLDecodeError, UnicodeDecodeError
        raise RulebookError(f"{path}: {exc}") from None
    module = _module_name(path.stem)
    if not (checks_dir / f"{module}.py").is_file():
        return None  # documented ahead of its analysis: not a rule yet
    try:
        code, name = data["code"], data["name"]
        if path.stem != f"{code}-{name}":
            raise RulebookError(f"{path}: file name must be {code}-{name}.toml")
        level = data["level"]
        if level not in LEVELS:
            raise RulebookError(f"{path}: level must be one of {', '.join(LEVELS)}")
        help_ = data["help"]
        missing = [k for k, _ in _HELP_SECTIONS if k not in help_]
        if missing:
            raise RulebookError(f"{path}: help lacks {', '.join(missing)}")
        catalogs = {k: v for k, v in data.items() if k not in _META_KEYS}
        return Rule(
            code=code,
            name=name,
            languages=tuple(data["languages"]),
            level=level,
            precision=data.get("precision", "high"),
            tags=tuple(data.get("tags", ())),
            short_description=data["short-description"].strip(),
            full_description=data["full-description"].strip(),
            help={k: help_[k] for k, _ in _HELP_SECTIONS},
            options=dict(data.get("options", {})),
            catalogs=catalogs,
            module=f"closelint.checks.{module}",
            source=str(path),
        )
    except KeyError as exc:
        raise RulebookError(f"{path}: missing key {exc}") from None


def _parsed(data: bytes) -> dict:
    """A rule file's TOML, parsed once per content: tomllib is pure Python and the rulebook is most
    of what a one-file scan parses, so the result is kept (marshal, like a .pyc) in the cache folder,
    by a hash of the bytes. A missing or unwritable folder only costs the parse."""
    import marshal
    import sys

    from closelint.cache import default_dir
    from closelint.files import blake2b, write_atomically

    key = blake2b(data + sys.version.encode(), digest_size=16).hexdigest()
    kept = default_dir() / "rulebook" / f"{key}.marshal"
    try:
        return marshal.loads(kept.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        pass
    import tomllib  # only on a miss: its import is a noticeable part of a one-file scan

    parsed = tomllib.loads(data.decode("utf-8"))
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(kept, marshal.dumps(parsed))
    except (OSError, ValueError):  # ValueError: a value marshal cannot hold (a TOML date)
        pass
    return parsed


@lru_cache(maxsize=1)
def load_rules() -> dict[str, Rule]:
    """All existing rules by code, in code order."""
    checks_dir = Path(__file__).resolve().parent / "checks"
    rules = {}
    for path in rule_files():
        rule = _load_rule(path, checks_dir)
        if rule is not None:
            rules[rule.code] = rule
    return rules


def rules_for(kind: str, codes) -> list[Rule]:
    """The rules among codes that analyse units of this kind ("go", "rust", "cargo")."""
    rules = load_rules()
    return [rules[c] for c in codes if kind in rules[c].languages]


def resolve(token: str) -> Rule | None:
    """A rule by code (CL101, case-insensitive) or kebab-case name (unclosed-resource)."""
    token = token.strip()
    rules = load_rules()
    if token.upper() in rules:
        return rules[token.upper()]
    for rule in rules.values():
        if rule.name == token.lower():
            return rule
    return None


# Codes fixed forever; a suppression or config may name one before its analysis exists.
RESERVED = {
    "CL101": "unclosed-resource",
    "CL102": "multipart-form-not-removed",
    "CL103": "blocking-goroutine",
    "CL104": "unbounded-request-body",
    "CL105": "defer-in-loop",
    "CL106": "timer-leak-in-loop",
    "CL201": "native-tls-dependency",
    "CL202": "blocking-task",
    "CL203": "leaked-allocation",
}


def canonical_code(token: str) -> str | None:
    """CL101 for 'CL101', 'cl101' or 'unclosed-resource'; None for anything unknown."""
    token = token.strip()
    if token.upper() in RESERVED:
        return token.upper()
    for code, name in RESERVED.items():
        if name == token.lower():
            return code
    return None
