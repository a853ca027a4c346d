"""analysistest-style fixtures: every line that carries `// want CODE` (`# want CODE` in TOML) must be
flagged with that code, and nothing else may be flagged.

Each folder tests/fixtures/<RULE>/<case>/ is one case, scanned as a whole by the real pipeline (its own
closelint.toml applies when it has one). A case without wants is a negative fixture: correct code
that must stay clean. A file marked `want notification` must be named in exactly one notification
(broken input), and no other file may be.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from closelint.report import sarif
from closelint.rulebook import load_rules
from conftest import FIXTURES, assert_valid_sarif, got_of, notifications_wanted, run_scan, wants_of

CASES = sorted(p for rule in FIXTURES.iterdir() if rule.is_dir() for p in rule.iterdir() if p.is_dir())


def _fmt(keys) -> str:
    return "\n".join(f"    {p}:{line}: {code}" for p, line, code in sorted(keys)) or "    (none)"


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.name}" for c in CASES])
def test_fixture(case: Path):
    wants, want_levels = wants_of(case)
    result = run_scan(case)
    got, got_levels = got_of(result, case)
    missing, extra = wants - got, got - wants
    details = {k: next(f.message for f in result.findings
                       if (Path(f.location.path).relative_to(case).as_posix(), f.location.line, f.code) == k)
               for k in extra}
    assert not missing and not extra, (
        f"\n  missing (wanted, not reported):\n{_fmt(missing)}"
        f"\n  unexpected (reported, not wanted):\n{_fmt(extra)}"
        + "".join(f"\n      {k[0]}:{k[1]}: {m}" for k, m in sorted(details.items())))
    wrong_levels = {k: (lv, got_levels[k]) for k, lv in want_levels.items() if got_levels.get(k) != lv}
    assert not wrong_levels, f"levels (wanted, got): {wrong_levels}"
    assert not [n for n in result.notifications if n.level == "error"], result.notifications
    notified = [Path(n.path).relative_to(case).as_posix() for n in result.notifications]
    assert sorted(notified) == sorted(notifications_wanted(case)), \
        f"notifications (one per marked file): {[(n.path, n.message) for n in result.notifications]}"
    # Every SARIF the tests produce is validated against the OASIS schema.
    assert_valid_sarif(sarif.build(result.findings, list(load_rules().values()), result.notifications, [str(case)]))


def test_every_rule_has_fixtures():
    for code in load_rules():
        folder = FIXTURES / code
        assert folder.is_dir() and any(folder.iterdir()), f"{code} has no fixtures under {folder}"
        wants = set()
        for case in folder.iterdir():
            wants |= wants_of(case)[0]
        assert any(c == code for _, _, c in wants), f"{code}'s fixtures never want {code}"
