"""Semver versions and Cargo version requirements, as intervals.

Every Cargo comparator (`^1.2`, `~1.2.3`, `=0.12.1`, `>=0.11`, `<0.13`, `0.11.*`, `*`) is an interval
[low, high) of versions; a requirement (comma-separated comparators) is their intersection. The
knowledge table's `versions` ranges use the same syntax.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache, total_ordering

_VERSION = re.compile(
    r"^\s*v?(\d+)(?:\.(\d+|[*xX]))?(?:\.(\d+|[*xX]))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?\s*$")
_OP = re.compile(r"^\s*(\^|~|=|>=|<=|>|<)?\s*(.*)$")


class SemverError(ValueError):
    pass


@total_ordering
@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    pre: tuple = ()  # pre-release identifiers; () is a release, which sorts after its pre-releases

    def _key(self):
        pre = tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, not self.pre, pre)

    def __lt__(self, other):
        return self._key() < other._key()

    def __str__(self):
        s = f"{self.major}.{self.minor}.{self.patch}"
        return s + ("-" + ".".join(str(p) for p in self.pre) if self.pre else "")


ZERO = Version(0, 0, 0, (0,))  # below every version, pre-releases included
INF = None  # an interval's open upper end


def _pre(text: str | None) -> tuple:
    if not text:
        return ()
    return tuple(int(p) if p.isdigit() else p for p in text.split("."))


@lru_cache(maxsize=4096)
def parse_version(text: str) -> Version:
    m = _VERSION.match(text)
    if not m or m.group(2) in ("*", "x", "X") or m.group(3) in ("*", "x", "X") or m.group(2) is None \
            or m.group(3) is None:
        raise SemverError(f"not a version: {text!r}")
    return Version(int(m.group(1)), int(m.group(2)), int(m.group(3)), _pre(m.group(4)))


@dataclass(frozen=True)
class Range:
    """Versions v with low <= v < high (high None: no upper end)."""

    low: Version
    high: Version | None

    def __contains__(self, v: Version) -> bool:
        return self.low <= v and (self.high is None or v < self.high)

    @property
    def empty(self) -> bool:
        return self.high is not None and not self.low < self.high

    def overlaps(self, other: "Range") -> bool:
        return not self.intersect(other).empty

    def intersect(self, other: "Range") -> "Range":
        low = max(self.low, other.low)
        if self.high is None:
            high = other.high
        elif other.high is None:
            high = self.high
        else:
            high = min(self.high, other.high)
        return Range(low, high)

    @property
    def unbounded(self) -> bool:
        return self.high is None


EVERYTHING = Range(ZERO, None)


def _comparator(text: str) -> Range:
    m = _OP.match(text)
    op, rest = m.group(1) or "^", m.group(2).strip()
    if rest in ("*", "x", "X"):
        if op not in ("^", "~", "="):
            raise SemverError(f"not a version requirement: {text!r}")
        return EVERYTHING
    vm = _VERSION.match(rest)
    if not vm:
        raise SemverError(f"not a version requirement: {text!r}")
    wild = ("*", "x", "X")
    major = int(vm.group(1))
    minor = None if vm.group(2) is None or vm.group(2) in wild else int(vm.group(2))
    patch = None if vm.group(3) is None or vm.group(3) in wild else int(vm.group(3))
    if minor is None and patch is not None:
        raise SemverError(f"not a version requirement: {text!r}")
    if (vm.group(2) or "") in wild or (vm.group(3) or "") in wild:
        op = "="  # 1.* and 1.2.* mean =1 and =1.2
    if patch is None:  # a partial version names a whole series, pre-releases included
        low = Version(major, minor or 0, 0, (0,))
        above = Version(major + 1, 0, 0, (0,)) if minor is None else Version(major, minor + 1, 0, (0,))
    else:
        low = Version(major, minor, patch, _pre(vm.group(4)))
        above = _just_above(low)
    if op == "=":
        return Range(low, above)
    if op == ">=":
        return Range(low, None)
    if op == ">":
        return Range(above, None)
    if op == "<":
        return Range(ZERO, low)
    if op == "<=":
        return Range(ZERO, above)
    if op == "~":
        high = Version(major + 1, 0, 0, (0,)) if minor is None else Version(major, minor + 1, 0, (0,))
        return Range(low, high)
    # caret: the leftmost non-zero part may not change
    if major > 0 or minor is None:
        high = Version(major + 1, 0, 0, (0,))
    elif minor > 0 or patch is None:
        high = Version(0, minor + 1, 0, (0,))
    else:
        high = Version(0, 0, patch + 1, (0,))
    return Range(low, high)


def _just_above(v: Version) -> Version:
    """The smallest version above v (for `=1.2.3` and `<=1.2.3`)."""
    if v.pre:
        return Version(v.major, v.minor, v.patch, (*v.pre, 0))
    return Version(v.major, v.minor, v.patch + 1, (0,))


@lru_cache(maxsize=4096)
def parse_requirement(text: str) -> Range:
    """A Cargo version requirement (or a table's `versions`) as one interval; SemverError if malformed."""
    if not isinstance(text, str):
        raise SemverError(f"not a version requirement: {text!r}")
    result = EVERYTHING
    parts = [p for p in text.split(",")]
    if not any(p.strip() for p in parts):
        raise SemverError(f"empty version requirement: {text!r}")
    for part in parts:
        if not part.strip():
            raise SemverError(f"not a version requirement: {text!r}")
        result = result.intersect(_comparator(part))
    return result


def lowest(r: Range) -> Version:
    """The lowest release a range admits (pre-release bounds like 0.0.0-0 become 0.0.0)."""
    low = r.low
    if low.pre == (0,):
        return Version(low.major, low.minor, low.patch)
    return low
