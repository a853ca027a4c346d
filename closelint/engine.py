"""One scan: discover -> group into units -> analyse each unit (in a process pool) -> filter -> sort.

A unit is analysed by run_unit in a worker: it reads its files once, lets every enabled rule look at
the same lazily parsed trees, applies inline suppressions, and sends back plain values. Results are
cached by content, so a re-scan of unchanged code reads files and hashes them, nothing more.
"""

from __future__ import annotations

import importlib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from closelint import __version__, suppress
from closelint.config import Config
from closelint.context import RuleContext, UnitContext
from closelint.discover import IgnoreSpec, discover
from closelint.findings import Finding, Notification, UnitResult
from closelint.observed import still_true
from closelint.rulebook import load_rules, rule_files
from closelint.source import SourceFile

_GENERATED = re.compile(rb"(?m)^// Code generated .* DO NOT EDIT\.\r?$")
_BINARY_PROBE = 8192


@dataclass(frozen=True)
class Unit:
    kind: str  # "go" | "rust" | "cargo"
    folder: str
    targets: tuple[str, ...]
    context: tuple[str, ...] = ()  # read for context only: a Go package's other files

    def size_hint(self) -> int:
        return len(self.targets) + len(self.context)


@dataclass
class Settings:
    """What a worker needs to analyse a unit: plain, picklable values."""

    codes: tuple[str, ...]
    options: dict
    catalogs: dict
    cache_dir: str | None
    digest: str  # closelint's code, rulebook and config: part of every cache key


@dataclass
class ScanResult:
    findings: list[Finding] = field(default_factory=list)
    suppressed: list[Finding] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    files: int = 0
    internal_error: bool = False


def _code_digest(cfg: Config) -> str:
    """Version, rulebook, the engine's own files (so a developer's edit is never served stale), config."""
    from closelint.cache import blake2b

    h = blake2b(digest_size=16)
    h.update(__version__.encode())
    pkg = Path(__file__).resolve().parent
    for path in sorted([*pkg.rglob("*.py"), *rule_files()]):
        try:
            st = path.stat()
        except OSError:
            continue
        h.update(f"{path.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    h.update(cfg.digest_material().encode())
    return h.hexdigest()


def make_units(files: list[str], go_files: dict[str, list[str]] | None = None) -> list[Unit]:
    """Units of the files to scan; go_files (folder -> its Go files) spares listing folders again."""
    go: dict[str, list[str]] = {}
    rust: dict[str, list[str]] = {}
    cargo: list[str] = []
    for f in files:
        folder, name = os.path.split(f)
        if name.endswith(".go"):
            go.setdefault(folder, []).append(f)
        elif name.endswith(".rs"):
            rust.setdefault(folder, []).append(f)
        elif name in ("Cargo.toml", "Cargo.lock"):
            cargo.append(f)
        # go.mod is read for context (the Go version), never a target
    units = []
    for folder, targets in go.items():
        taken = set(targets)
        listed = (go_files or {}).get(folder)
        siblings = [p for p in listed if p not in taken] if listed is not None else _go_siblings(folder, taken)
        units.append(Unit("go", folder, tuple(targets), tuple(siblings)))
    for folder, targets in rust.items():
        units.append(Unit("rust", folder, tuple(targets)))
    if cargo:
        units.append(Unit("cargo", os.path.commonpath(cargo), tuple(cargo)))
    return units


def _go_siblings(folder: str, targets: set[str]) -> list[str]:
    out = []
    try:
        for entry in os.scandir(folder):
            if entry.name.endswith(".go") and entry.path not in targets:
                try:
                    if entry.is_file(follow_symlinks=False):
                        out.append(entry.path)
                except OSError:
                    pass
    except OSError:
        pass
    return sorted(out)


# ---------------------------------------------------------------------------------------- worker

_SETTINGS: Settings | None = None


def _init_worker(settings: Settings) -> None:
    global _SETTINGS
    _SETTINGS = settings


def _read(path: str) -> bytes:
    """Read a regular file; O_NONBLOCK so that a file turned into a FIFO since discovery cannot hang us."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file")
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _unit_files(unit: Unit):
    """(path, is_target, bytes or the OSError) for every file of the unit, targets first."""
    for path, is_target in [*((p, True) for p in unit.targets), *((p, False) for p in unit.context)]:
        try:
            yield path, is_target, _read(path)
        except OSError as exc:
            yield path, is_target, exc


class UnitKeys:
    """Cache keys of units: the digests of every file a unit reads (its own files, the go.mod that
    sets its Go version) and closelint's own digest (code, rulebook, config)."""

    def __init__(self, code_digest: str, file_digest):
        self._code_digest = code_digest
        self._file_digest = file_digest  # path -> content digest, None when unreadable
        self._go_mods: dict[str, str | None] = {}

    def __call__(self, unit: Unit) -> str:
        from closelint.cache import blake2b

        h = blake2b(digest_size=20)
        h.update(unit.kind.encode())
        files = [*((p, 1) for p in unit.targets), *((p, 0) for p in unit.context)]
        if unit.kind == "go":
            go_mod = self._go_mod(unit.folder)
            if go_mod is not None:
                files.append((go_mod, 0))
        for path, is_target in files:
            digest = self._file_digest(path)
            if digest is not None:
                h.update(f"{path}\0{is_target}\0{digest}\0".encode())
        h.update(self._code_digest.encode())
        return h.hexdigest()

    def _go_mod(self, folder: str) -> str | None:
        """The nearest go.mod at or above folder (as context.go_mod_for), each folder asked once."""
        if folder not in self._go_mods:
            candidate = os.path.join(folder, "go.mod")
            parent = os.path.dirname(folder)
            self._go_mods[folder] = (candidate if os.path.isfile(candidate)
                                     else self._go_mod(parent) if parent != folder else None)
        return self._go_mods[folder]


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


def _rules_for(kind: str, codes) -> list:
    rules = load_rules()
    return [rules[c] for c in codes if kind in rules[c].languages]


def _from_cache(hit: dict) -> UnitResult:
    return UnitResult([Finding.from_plain(f) for f in hit["findings"]],
                      [Notification(**n) for n in hit["notifications"]])


def run_unit(job: tuple[Unit, str]) -> UnitResult:
    """Analyse one unit (in a worker); key is its cache key, "" when it is not cached."""
    unit, key = job
    settings = _SETTINGS
    result = UnitResult()
    rules = _rules_for(unit.kind, settings.codes)
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
                covered[f.location.path] = suppress.parse(src.lines)
            reason = suppress.suppression_for(covered[f.location.path], f.location.line, f.code)
            result.findings.append(f if reason is None else f.with_(suppressed=reason))


# ------------------------------------------------------------------------------------------ main

def scan(paths: list[str], cfg: Config, *, jobs: int | None = None, use_cache: bool = True,
         force_exclude: bool = False, cache_dir: Path | None = None) -> ScanResult:
    out = ScanResult()
    found = discover(paths, cfg.exclude, cfg.root, force_exclude=force_exclude)
    out.notifications += found.notifications
    out.files = len(found.files)
    units = make_units(found.files, found.go_files)
    if use_cache:
        from closelint.cache import Cache, default_dir

        cache_dir = cache_dir or default_dir()
        Cache(cache_dir).prune()
    settings = Settings(tuple(sorted(cfg.select)), cfg.options, cfg.catalogs,
                        str(cache_dir) if use_cache else None, _code_digest(cfg))
    jobs = jobs or os.cpu_count() or 1
    policy = _PathPolicy(cfg, paths)
    for res in _run_all(units, settings, jobs, paths):
        out.notifications += res.notifications
        for f in res.findings:
            f = policy.apply(f)
            if f is None:
                continue
            (out.suppressed if f.suppressed is not None else out.findings).append(f)
    out.findings.sort(key=Finding.sort_key)
    out.suppressed.sort(key=Finding.sort_key)
    out.notifications = sorted(set(out.notifications), key=lambda n: (n.path, n.line, n.message))
    out.internal_error = any(n.level == "error" for n in out.notifications)
    return out


def _run_all(units: list[Unit], settings: Settings, jobs: int, scanned: list[str]):
    """Results of every unit: cache hits read here, the rest analysed in a pool (or in-process when
    there is little to do), so a re-scan of unchanged code never starts a worker."""
    units = [u for u in units if _rules_for(u.kind, settings.codes)]
    if not settings.cache_dir:
        return _analyse_all([(u, "") for u in units], settings, jobs)
    from closelint.cache import Cache, FileDigests

    cache = Cache(Path(settings.cache_dir))
    digests = FileDigests(cache.file_digests_path(scanned), _read)
    unit_key = UnitKeys(settings.digest, digests)
    results, jobs_todo = [], []
    for u in units:
        key = unit_key(u)
        hit = cache.get(key)
        if hit is not None and still_true(hit.get("observed", {})):
            results.append(_from_cache(hit))
        else:
            jobs_todo.append((u, key))
    digests.save()
    return results + _analyse_all(jobs_todo, settings, jobs)


def _analyse_all(jobs_todo: list, settings: Settings, jobs: int) -> list[UnitResult]:
    units = jobs_todo
    if jobs <= 1 or len(units) < 4:
        _init_worker(settings)
        return [run_unit(u) for u in units]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    units = sorted(units, key=lambda job: job[0].size_hint(), reverse=True)  # big packages first
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    with ProcessPoolExecutor(max_workers=min(jobs, len(units)), mp_context=ctx,
                             initializer=_init_worker, initargs=(settings,)) as pool:
        return list(pool.map(run_unit, units, chunksize=max(1, len(units) // (jobs * 16))))


class _PathPolicy:
    """What the config says about a finding's path: per-file-ignores, example code, level overrides.

    Globs are matched against the path relative to the config's folder, or, for files outside it,
    relative to the scanned path that holds them (so `closelint scan ../other-repo` behaves the same)."""

    def __init__(self, cfg: Config, scanned: list[str]):
        self.cfg = cfg
        self.bases = sorted({cfg.root, *(Path(os.path.abspath(p)) for p in scanned if os.path.isdir(p))},
                            key=lambda b: len(b.parts), reverse=True)
        self.ignores = [(IgnoreSpec([glob]), codes) for glob, codes in cfg.per_file_ignores]
        self.examples = IgnoreSpec(cfg.example_paths) if cfg.example_paths else None

    def _relative(self, path: str) -> str:
        p = Path(path)
        for base in [self.cfg.root, *self.bases]:
            try:
                return p.relative_to(base).as_posix()
            except ValueError:
                continue
        return p.name

    def apply(self, f: Finding) -> Finding | None:
        rel = self._relative(f.location.path) if (self.ignores or self.examples) else ""
        if any(f.code in codes and spec.matches(rel) for spec, codes in self.ignores):
            return None
        level = self.cfg.levels.get(f.code)
        if level is None and self.examples is not None and f.level != "note" and self.examples.matches(rel):
            level = "note"
        return f.with_(level=level) if level and level != f.level else f
