"""closelint's command line. Exit status: 0 no findings, 1 findings, 2 usage, config or internal error."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from closelint import __version__

FORMATS = ("text", "concise", "json", "sarif", "github")
EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one clear line, not argparse's usage block
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="closelint", description="Static resource-lifecycle linter for Go and Rust.")
    p.add_argument("--version", action="version", version=f"closelint {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    s = sub.add_parser("scan", help="scan files and folders (default: .)")
    s.add_argument("paths", nargs="*", metavar="PATH")
    s.add_argument("--format", choices=FORMATS, default="text")
    s.add_argument("--output", "-o", metavar="FILE", help="write the report to FILE (atomically)")
    s.add_argument("--select", metavar="CODES", help="only these rules (codes or names, comma-separated)")
    s.add_argument("--ignore", metavar="CODES", help="not these rules")
    s.add_argument("--config", metavar="FILE", help="config file (default: searched upward)")
    s.add_argument("--jobs", "-j", type=_positive_int, metavar="N", help="worker processes (default: all cores)")
    s.add_argument("--no-cache", action="store_true", help="do not read or write the result cache")
    s.add_argument("--exit-zero", action="store_true", help="exit 0 even when there are findings")
    s.add_argument("--force-exclude", action="store_true",
                   help="apply excludes to files named on the command line too (pre-commit)")
    s.add_argument("--statistics", action="store_true", help="counts per rule after the findings")
    s.add_argument("--include-suppressed", action="store_true",
                   help="keep suppressed findings, marked as such (SARIF suppressions, JSON 'suppressed')")

    r = sub.add_parser("rules", help="list the rules")
    r.add_argument("--format", choices=("text", "json"), default="text")
    one = sub.add_parser("rule", help="show one rule's full help")
    one.add_argument("code", metavar="CODE")
    return p


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.command == "scan":
            return _scan(args)
        if args.command == "rules":
            return _rules(args)
        if args.command == "rule":
            return _rule(args)
        _parser().print_help()
        return EXIT_ERROR
    except UsageError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - never a traceback for the user
        from closelint.config import ConfigError
        from closelint.discover import PathError
        from closelint.rulebook import RulebookError

        if isinstance(exc, (ConfigError, PathError)):
            return _fail(str(exc))
        if isinstance(exc, RulebookError):
            return _fail(f"broken rulebook: {exc}")
        if os.environ.get("CLOSELINT_DEBUG"):
            raise
        return _fail(f"internal error: {type(exc).__name__}: {exc} (set CLOSELINT_DEBUG=1 for a traceback)")


def _fail(message: str) -> int:
    print(f"closelint: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def _select(cfg, select: str | None, ignore: str | None):
    from closelint.config import _codes
    from closelint.rulebook import load_rules

    where = Path("--select")
    if select is not None:
        cfg.select = _codes(select, "--select", where) & set(load_rules())
    if ignore is not None:
        cfg.select -= _codes(ignore, "--ignore", Path("--ignore"))


def _scan(args) -> int:
    from closelint.config import ConfigError, find_config, load_config
    from closelint.engine import scan
    from closelint.rulebook import load_rules

    paths = args.paths or ["."]
    if args.config:
        cfg_path = Path(args.config)
        if not cfg_path.is_file():
            raise ConfigError(f"{cfg_path}: no such config file")
    else:
        cfg_path = find_config(Path(paths[0]) if Path(paths[0]).exists() else Path.cwd())
    cfg = load_config(cfg_path, start=Path.cwd())
    try:
        _select(cfg, args.select, args.ignore)
    except ConfigError as exc:
        raise UsageError(str(exc).replace("--select: ", "").replace("--ignore: ", "")) from None

    result = scan(paths, cfg, jobs=args.jobs, use_cache=not args.no_cache, force_exclude=args.force_exclude)

    for n in result.notifications:
        from closelint.report.text import display_path

        where = display_path(n.path) + (f":{n.line}" if n.line else "")
        print(f"closelint: {where}: {n.message}", file=sys.stderr)

    rules = [r for c, r in load_rules().items() if c in cfg.select]
    report = _render(args, result, rules, paths)
    if args.output:
        _write_output(Path(args.output), report)
    else:
        sys.stdout.write(report)
        sys.stdout.flush()
    if result.internal_error:
        return EXIT_ERROR
    return EXIT_FINDINGS if result.findings and not args.exit_zero else EXIT_OK


def _render(args, result, rules, paths) -> str:
    shown = result.findings
    if args.include_suppressed:
        from closelint.findings import Finding

        shown = sorted([*result.findings, *result.suppressed], key=Finding.sort_key)
    if args.format == "sarif":
        from closelint.report import sarif

        return sarif.render(result.findings, rules, result.notifications, paths,
                            include_suppressed=args.include_suppressed, suppressed=result.suppressed)
    if args.format == "json":
        from closelint.report import json_

        return json_.render(shown)
    if args.format == "github":
        from closelint.report import github

        return github.render(result.findings)
    from closelint.report import text

    stream = sys.stdout if not args.output else None
    return text.render(shown, concise=args.format == "concise", color=bool(stream) and text.use_color(stream),
                       statistics=args.statistics, suppressed_count=len(result.suppressed), files=result.files)


def _write_output(path: Path, content: str) -> None:
    from closelint.files import write_atomically

    try:
        write_atomically(path, content.encode("utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def _rules(args) -> int:
    from closelint.rulebook import load_rules

    rules = load_rules().values()
    if args.format == "json":
        import json

        print(json.dumps([{"code": r.code, "name": r.name, "languages": list(r.languages), "level": r.level,
                           "precision": r.precision, "tags": list(r.tags),
                           "short_description": r.short_description} for r in rules], indent=2))
        return EXIT_OK
    for r in rules:
        print(f"{r.code}  {r.name:<28} {','.join(r.languages):<6} {r.level:<8} {r.short_description}")
    return EXIT_OK


def _rule(args) -> int:
    from closelint.rulebook import RESERVED, canonical_code, load_rules

    code = canonical_code(args.code)
    if code is None:
        raise UsageError(f"unknown rule {args.code!r}; `closelint rules` lists them")
    rule = load_rules().get(code)
    if rule is None:
        raise UsageError(f"{code} ({RESERVED[code]}) is reserved but not implemented in closelint {__version__}")
    sys.stdout.write(rule.help_markdown)
    return EXIT_OK
