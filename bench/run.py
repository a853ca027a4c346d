#!/usr/bin/env python3
"""Benchmark closelint on a source tree, offline: the parse-only floor, a cold scan, a warm scan.

    python bench/run.py PATH [--runs 3] [--jobs N] [--one-file FILE]

- parse-only floor: tree-sitter parsing every .go/.rs file closelint would scan, in one process on
  one core (reading included): what any tree-sitter tool must pay at least.
- cold scan: `closelint scan PATH --no-cache` with every rule on.
- warm scan: the same with a cache filled by a previous run and nothing changed.
- one file (--one-file): `closelint scan FILE --no-cache`, the pre-commit case, wall time.
Each is run --runs times, one round after another; medians are printed, the ratios the speed targets
are stated in (the median of each round's own ratio), and the peak memory of the whole process tree (sampled from /proc) for the cold scan.

closelint runs as pip leaves it installed, with its bytecode cached: PYTHONDONTWRITEBYTECODE is
dropped from the scans' environment (with it set, every process compiles closelint from source).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def parse_floor(files: list[Path]) -> float:
    from closelint import parsing

    parsers = {".go": parsing.parser("go"), ".rs": parsing.parser("rust")}
    start = time.perf_counter()
    for f in files:
        p = parsers.get(f.suffix)
        if p is not None:
            p.parse(f.read_bytes())
    return time.perf_counter() - start


def _tree_rss_kb(root_pid: int) -> int:
    """Resident memory of a process and all its descendants, in KiB."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            ppid = int(fields[1])
            with open(f"/proc/{entry}/statm") as fh:
                pages = int(fh.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = pages * (os.sysconf("SC_PAGE_SIZE") // 1024)
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def timed_scan(path: str, extra: list[str], env: dict) -> tuple[float, int]:
    """One scan as a user runs it, from inside the tree (`cd tree && closelint scan .`, or the file's
    folder): run from this checkout, `python -m closelint` would import the checkout's closelint
    instead of the installed one."""
    path = os.path.abspath(path)
    folder, target = (path, ".") if os.path.isdir(path) else os.path.split(path)
    cmd = [sys.executable, "-m", "closelint", "scan", target, "--format", "json", "--output", os.devnull,
           "--exit-zero", *extra]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=folder, stderr=subprocess.DEVNULL)
    peak = 0
    stop = threading.Event()

    def sample():
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _tree_rss_kb(proc.pid))
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    rc = proc.wait()
    elapsed = time.perf_counter() - start
    stop.set()
    sampler.join()
    if rc not in (0, 1):
        sys.exit(f"closelint failed with exit status {rc}: {' '.join(cmd)}")
    return elapsed, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--one-file", help="also time `closelint scan FILE --no-cache` (the pre-commit case)")
    args = ap.parse_args()

    from closelint.config import find_config, load_config
    from closelint.discover import discover

    cfg = load_config(find_config(Path(args.path)), start=Path(args.path))
    files = [Path(f) for f in discover([args.path], cfg.exclude, cfg.root).files if f.endswith((".go", ".rs"))]
    size = sum(f.stat().st_size for f in files)
    print(f"{args.path}: {len(files)} source files, {size / 1e6:.1f} MB; {os.cpu_count()} cores, jobs={args.jobs}")

    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    jobs = ["--jobs", str(args.jobs)]
    floors, colds, warms, peaks = [], [], [], []
    with tempfile.TemporaryDirectory() as cache:
        env["CLOSELINT_CACHE_DIR"] = cache
        timed_scan(args.path, jobs, env)  # fills the cache, writes the bytecode, warms the OS file cache
        for _ in range(args.runs):
            floors.append(parse_floor(files))
            t, peak = timed_scan(args.path, [*jobs, "--no-cache"], env)
            colds.append(t)
            peaks.append(peak)
            warms.append(timed_scan(args.path, jobs, env)[0])
    floor, cold, warm = (statistics.median(x) for x in (floors, colds, warms))
    # Ratios are taken within each round (floor, cold and warm run back to back) and their median
    # printed: on a shared machine the speed drifts between rounds far more than within one.
    cold_ratio = statistics.median(c / f for c, f in zip(colds, floors))
    warm_ratio = statistics.median(w / c for w, c in zip(warms, colds))
    print(f"parse-only floor (1 core): {floor:6.2f} s  ({size / 1e6 / floor:.1f} MB/s)")
    print(f"cold scan (--no-cache)   : {cold:6.2f} s  = {cold_ratio:.2f} x floor  (target <= 1.00)")
    print(f"warm scan (cache)        : {warm:6.2f} s  = {warm_ratio:.2f} x cold   (target < 0.20)")
    print(f"peak memory, cold scan   : {max(peaks) / 1024:6.0f} MB (whole process tree; target < 300)")
    if args.one_file:
        ones = [timed_scan(args.one_file, ["--no-cache"], env)[0] for _ in range(args.runs)]
        print(f"one file ({args.one_file}): {statistics.median(ones):6.2f} s  (target < 0.30)")
    print(f"medians of {args.runs} runs; all runs: floor {_r(floors)}, cold {_r(colds)}, warm {_r(warms)}")


def _r(xs: list[float]) -> list[float]:
    return [round(x, 2) for x in xs]


if __name__ == "__main__":
    main()
