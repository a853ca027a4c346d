"""One scan: discover -> group into units -> analyse each unit (in a process pool) -> filter -> sort.

A unit is analysed by closelint.analysis.run_unit in a worker. Results are cached by content: a
re-scan of unchanged code stats its files (closelint.cache.FileDigests), reads one small cache
entry per unit, and imports neither the analysis nor the rules.
"""

from __future__ import annotations

import os
from collections import namedtuple
from pathlib import Path

from closelint import __version__
from closelint.config import Config
from closelint.discover import IgnoreSpec, discover
from closelint.files import blake2b
from closelint.findings import Finding, Notification, UnitResult
from closelint.observed import Recheck
from closelint.rulebook import rule_files, rules_for


class Unit(namedtuple("Unit", "kind folder targets context", defaults=((),))):
    """What is analysed together: a Go package's files in one folder, a folder of Rust files, or
    every Cargo manifest and lock file. kind: "go" | "rust" | "cargo"; targets: the files to report
    on; context: files read for context only (a Go package's other files)."""

    __slots__ = ()

    def size_hint(self) -> int:
        return len(self.targets) + len(self.context)

    def files(self) -> list[tuple[str, bool]]:
        """(path, is_target) for every file the unit reads, targets first."""
        return [*((p, True) for p in self.targets), *((p, False) for p in self.context)]


class Settings:
    """What a worker needs to analyse a unit: plain, picklable values."""

    def __init__(self, codes: tuple[str, ...], options: dict, catalogs: dict, cache_dir: str | None, digest: str):
        self.codes = codes
        self.options = options
        self.catalogs = catalogs
        self.cache_dir = cache_dir
        self.digest = digest  # closelint's code, rulebook and config: part of every cache key


class ScanResult:
    def __init__(self):
        self.findings: list[Finding] = []
        self.suppressed: list[Finding] = []
        self.notifications: list[Notification] = []
        self.files = 0
        self.internal_error = False


def _code_digest(cfg: Config) -> str:
    """Version, rulebook, the engine's own files (so a developer's edit is never served stale), config."""
    h = blake2b(digest_size=16)
    h.update(__version__.encode())
    pkg = os.path.dirname(os.path.realpath(__file__))
    code = [os.path.join(d, n) for d, _, names in os.walk(pkg) for n in names if n.endswith(".py")]
    for path in sorted([*code, *map(str, rule_files())]):
        try:
            st = os.stat(path)
        except OSError:
            continue
        h.update(f"{os.path.basename(path)}:{st.st_size}:{st.st_mtime_ns};".encode())
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


class UnitKeys:
    """Cache keys of units: the digests of every file a unit reads (its own files, the go.mod that
    sets its Go version) and closelint's own digest (code, rulebook, config)."""

    def __init__(self, code_digest: str, file_digest):
        self._code_digest = code_digest
        self._file_digest = file_digest  # path -> content digest, None when unreadable
        self._go_mods: dict[str, str | None] = {}

    def __call__(self, unit: Unit) -> str:
        h = blake2b(digest_size=20)
        h.update(unit.kind.encode())
        files = unit.files()
        if unit.kind == "go":
            go_mod = self._go_mod(unit.folder)
            if go_mod is not None:
                files.append((go_mod, False))
        for path, is_target in files:
            digest = self._file_digest(path)
            if digest is not None:
                h.update(f"{path}\0{int(is_target)}\0{digest}\0".encode())
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


def _from_cache(hit: dict) -> UnitResult:
    return UnitResult([Finding.from_plain(f) for f in hit["findings"]],
                      [Notification(**n) for n in hit["notifications"]])


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
    units = [u for u in units if rules_for(u.kind, settings.codes)]
    if not settings.cache_dir:
        return _analyse_all([(u, "") for u in units], settings, jobs)
    from closelint.cache import Cache, FileDigests

    cache = Cache(Path(settings.cache_dir))
    digests = FileDigests(cache.file_digests_path(scanned))
    unit_key = UnitKeys(settings.digest, digests)
    recheck = Recheck(digests)
    results, jobs_todo = [], []
    for u in units:
        key = unit_key(u)
        hit = cache.get(key)
        if hit is not None and recheck.still_true(hit.get("observed", {})):
            results.append(_from_cache(hit))
        else:
            jobs_todo.append((u, key))
    digests.save()
    return results + _analyse_all(jobs_todo, settings, jobs)


def _analyse_all(jobs_todo: list, settings: Settings, jobs: int) -> list[UnitResult]:
    if not jobs_todo:
        return []
    from closelint.analysis import init_worker, run_unit

    units = jobs_todo
    if jobs <= 1 or len(units) < 4:
        init_worker(settings)
        return [run_unit(u) for u in units]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    units = sorted(units, key=lambda job: job[0].size_hint(), reverse=True)  # big packages first
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    with ProcessPoolExecutor(max_workers=min(jobs, len(units)), mp_context=ctx,
                             initializer=init_worker, initargs=(settings,)) as pool:
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
