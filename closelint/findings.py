"""Findings and notifications: plain values that rules produce and reports format.

They are named tuples, not dataclasses: every scan imports this module, and the dataclasses
module with its class generation costs more at start-up than a warm re-scan of a whole package.
"""

from __future__ import annotations

from collections import namedtuple


class Location(namedtuple("Location", "path line column end_line end_column column_utf16 end_column_utf16 message",
                          defaults=("",))):
    """A span in a file. Lines and columns are 1-based; end_column is exclusive (as in SARIF).

    column counts Unicode characters (what editors show); the *_utf16 columns count UTF-16 code
    units, which is what SARIF's default columnKind asks for. message: what this place is (for a
    related location).
    """

    __slots__ = ()


class Finding(namedtuple("Finding", "code name level message location function snippet related suppressed",
                         defaults=("", "", (), None))):
    """One problem a rule reports at location (a Location).

    function: the enclosing function's name. snippet: the normalized text of the flagged
    statement; with code, path and function it forms the fingerprint, so an alert keeps its
    identity when code above it moves. related: Locations that explain it. suppressed: the
    justification, when a suppression comment matched.
    """

    __slots__ = ()

    def sort_key(self):
        loc = self.location
        return (loc.path, loc.line, loc.column, self.code, self.message)

    def with_(self, **changes) -> Finding:
        return self._replace(**changes)

    def to_plain(self) -> dict:
        return {**self._asdict(), "location": self.location._asdict(),
                "related": [r._asdict() for r in self.related]}

    @classmethod
    def from_plain(cls, d: dict) -> Finding:
        d = dict(d)
        d["location"] = Location(**d["location"])
        d["related"] = tuple(Location(**r) for r in d["related"])
        return cls(**d)


class Notification(namedtuple("Notification", "path message level line", defaults=("warning", 0))):
    """Something the scan could not fully do for one file (unreadable, not UTF-8, syntax error...).
    level is SARIF's notification level: error | warning | note."""

    __slots__ = ()

    def to_plain(self) -> dict:
        return self._asdict()


class UnitResult:
    """What the analysis of one unit produced."""

    __slots__ = ("findings", "notifications", "observed")

    def __init__(self, findings: list[Finding] | None = None, notifications: list[Notification] | None = None,
                 observed: dict | None = None):
        self.findings = findings if findings is not None else []
        self.notifications = notifications if notifications is not None else []
        self.observed = observed if observed is not None else {}  # what it saw outside the unit (closelint.observed)
