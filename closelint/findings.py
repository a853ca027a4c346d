"""Findings and notifications: plain values that rules produce and reports format."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace


@dataclass(frozen=True)
class Location:
    """A span in a file. Lines and columns are 1-based; end_column is exclusive (as in SARIF).

    column counts Unicode characters (what editors show); the *_utf16 columns count UTF-16 code
    units, which is what SARIF's default columnKind asks for.
    """

    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    column_utf16: int
    end_column_utf16: int
    message: str = ""


@dataclass(frozen=True)
class Finding:
    code: str
    name: str
    level: str
    message: str
    location: Location
    function: str = ""
    # Normalized text of the flagged statement: with code, path and function it forms the
    # fingerprint, so an alert keeps its identity when code above it moves.
    snippet: str = ""
    related: tuple[Location, ...] = ()
    suppressed: str | None = None  # the justification, when a suppression comment matched

    def sort_key(self):
        loc = self.location
        return (loc.path, loc.line, loc.column, self.code, self.message)

    def with_(self, **changes) -> "Finding":
        return replace(self, **changes)

    def to_plain(self) -> dict:
        return asdict(self)

    @classmethod
    def from_plain(cls, d: dict) -> "Finding":
        d = dict(d)
        d["location"] = Location(**d["location"])
        d["related"] = tuple(Location(**r) for r in d["related"])
        return cls(**d)


@dataclass(frozen=True)
class Notification:
    """Something the scan could not fully do for one file (unreadable, not UTF-8, syntax error...)."""

    path: str
    message: str
    level: str = "warning"  # SARIF notification level: error | warning | note
    line: int = 0

    def to_plain(self) -> dict:
        return asdict(self)


@dataclass
class UnitResult:
    findings: list[Finding] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    observed: dict = field(default_factory=dict)  # what it saw outside the unit (closelint.observed)
