"""Configuration: closelint.toml, .closelint.toml or [tool.closelint] in pyproject.toml.

Found by searching upward from the scanned path, or named with --config. Every key is validated:
an unknown key, an unknown code or a value of the wrong type is a ConfigError that names the file
and the problem in one line (exit status 2).
"""

from __future__ import annotations

import re
from pathlib import Path

from closelint.rulebook import LEVELS, RESERVED, canonical_code, load_rules

CONFIG_NAMES = ("closelint.toml", ".closelint.toml", "pyproject.toml")
DEFAULT_EXCLUDE = ("vendor/", "target/", "testdata/", "node_modules/", ".git/")
DEFAULT_EXAMPLE_PATHS = ("examples/", "_examples/", "example/")
_TOP_KEYS = {"select", "ignore", "exclude", "extend-exclude", "per-file-ignores", "example-paths"}


class ConfigError(Exception):
    pass


class Config:
    def __init__(self, path: Path | None = None, root: Path | None = None):
        self.path = path  # the file it came from
        self.root = root if root is not None else Path.cwd()  # excludes and per-file-ignores are relative to it
        self.select: set[str] = set()  # codes of the rules that run
        self.exclude: list[str] = list(DEFAULT_EXCLUDE)
        self.per_file_ignores: list[tuple[str, set[str]]] = []
        # Code that exists to demonstrate (gitignore syntax): its findings are reported as notes.
        self.example_paths: list[str] = list(DEFAULT_EXAMPLE_PATHS)
        self.levels: dict[str, str] = {}  # code -> forced level
        self.options: dict[str, dict] = {}  # code -> option values (defaults merged)
        self.catalogs: dict[str, dict] = {}  # code -> catalog tables (user rows added)

    def digest_material(self) -> str:
        """What of the config can change findings: part of every cache key."""
        return repr((sorted(self.select), sorted(self.levels.items()), self.example_paths,
                     sorted((k, repr(v)) for k, v in self.options.items()),
                     sorted((k, repr(v)) for k, v in self.catalogs.items())))


def find_config(start: Path) -> Path | None:
    start = start.resolve()
    d = start if start.is_dir() else start.parent
    for folder in (d, *d.parents):
        for name in CONFIG_NAMES:
            candidate = folder / name
            if candidate.is_file():
                if name != "pyproject.toml" or _pyproject_has_section(candidate):
                    return candidate
    return None


def _pyproject_has_section(path: Path) -> bool:
    try:
        return b"[tool.closelint" in path.read_bytes()
    except OSError:
        return False


def _codes(value, where: str, path: Path) -> set[str]:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{path}: {where} must be a list of rule codes or names")
    codes = set()
    for token in value:
        if token.strip().upper() == "ALL":
            codes |= set(RESERVED)
            continue
        code = canonical_code(token)
        if code is None:
            raise ConfigError(f"{path}: {where}: unknown rule {token.strip()!r}")
        codes.add(code)
    return codes


def _str_list(value, where: str, path: Path) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{path}: {where} must be a list of strings")
    return value


def _globs(value, where: str, path: Path) -> list[str]:
    """A list of gitignore-style patterns, each one readable (git would silently skip a bad one;
    in a config it is a mistake worth saying)."""
    import pathspec

    globs = _str_list(value, where, path)
    for glob in globs:
        try:
            pathspec.GitIgnoreSpec.from_lines([glob])
        except Exception as exc:  # noqa: BLE001 - pathspec raises ValueError, re.error, its own
            raise ConfigError(f"{path}: {where}: invalid pattern {glob!r} ({exc})") from None
    return globs


def load_config(path: Path | None, *, start: Path | None = None) -> Config:
    """Read and validate a config file; with no file, the defaults rooted at start (or cwd)."""
    rules = load_rules()
    if path is None:
        cfg = Config(root=(start or Path.cwd()).resolve())
        data = {}
    else:
        import tomllib

        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read config: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
        data = raw.get("tool", {}).get("closelint", {}) if path.name == "pyproject.toml" else raw
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: [tool.closelint] must be a table")
        cfg = Config(path=path, root=path.resolve().parent)

    cfg.select = set(rules)
    for key, value in data.items():
        if key in _TOP_KEYS:
            continue
        code = canonical_code(key)
        if code is None or not isinstance(value, dict):
            raise ConfigError(f"{path}: unknown key {key!r}")
    if "select" in data:
        cfg.select = _codes(data["select"], "select", path) & set(rules)
    if "ignore" in data:
        cfg.select -= _codes(data["ignore"], "ignore", path)
    if "exclude" in data:
        cfg.exclude = _globs(data["exclude"], "exclude", path)
    if "extend-exclude" in data:
        cfg.exclude += _globs(data["extend-exclude"], "extend-exclude", path)
    if "example-paths" in data:
        cfg.example_paths = _globs(data["example-paths"], "example-paths", path)
    pfi = data.get("per-file-ignores", {})
    if not isinstance(pfi, dict):
        raise ConfigError(f"{path}: per-file-ignores must be a table of glob = [codes]")
    for glob, codes in pfi.items():
        _globs([glob], "per-file-ignores", path)
        cfg.per_file_ignores.append((glob, _codes(codes, f"per-file-ignores[{glob!r}]", path)))

    for code, rule in rules.items():
        cfg.options[code] = dict(rule.options)
        cfg.catalogs[code] = {k: list(v) if isinstance(v, list) else v for k, v in rule.catalogs.items()}
    for key, section in data.items():
        if key in _TOP_KEYS:
            continue
        code = canonical_code(key)
        if code not in rules:
            continue  # a reserved rule not built yet: nothing to configure
        _apply_rule_section(cfg, rules[code], section, path)
    return cfg


def _apply_rule_section(cfg: Config, rule, section: dict, path: Path):
    where = f"[{rule.code}]"
    for key, value in section.items():
        if key == "level":
            if value not in LEVELS:
                raise ConfigError(f"{path}: {where} level must be one of {', '.join(LEVELS)}")
            cfg.levels[rule.code] = value
        elif key in rule.options:
            default = rule.options[key]
            if not _same_type(default, value):
                raise ConfigError(
                    f"{path}: {where} {key} must be {type(default).__name__}, not {type(value).__name__}")
            if key.endswith("-pattern") and value:  # options named *-pattern are regular expressions
                try:
                    re.compile(value)
                except re.error as exc:
                    raise ConfigError(f"{path}: {where} {key} is not a valid regular expression: {exc}") from None
            cfg.options[rule.code][key] = value
        elif key in rule.catalogs and isinstance(rule.catalogs[key], list):
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise ConfigError(f"{path}: {where} {key} must be an array of tables ([[{rule.code}.{key}]])")
            cfg.catalogs[rule.code][key] = cfg.catalogs[rule.code][key] + value
        else:
            known = sorted({"level", *rule.options, *(k for k, v in rule.catalogs.items() if isinstance(v, list))})
            raise ConfigError(f"{path}: {where} unknown key {key!r} (known: {', '.join(known)})")


def _same_type(default, value) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))
