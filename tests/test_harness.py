"""The fixture harness itself must be able to fail: a missing want and an unwanted finding both show."""

from __future__ import annotations

from pathlib import Path

from conftest import got_of, run_scan, wants_of
from test_cli import LEAK, LEAK_LINE


def test_wants_and_got_disagree_both_ways(tmp_path: Path):
    lines = LEAK.splitlines()
    lines[2] += " // want CL101"  # a clean line that wants a finding
    (tmp_path / "a.go").write_text("\n".join(lines) + "\n")  # the real leak carries no want
    wants, _ = wants_of(tmp_path)
    got, _ = got_of(run_scan(tmp_path), tmp_path)
    assert wants - got == {("a.go", 3, "CL101")}
    assert got - wants == {("a.go", LEAK_LINE, "CL101")}


def test_want_syntax(tmp_path: Path):
    (tmp_path / "x.go").write_text("a // want CL101 CL105:error\nb // wanted CL101\n")
    (tmp_path / "Cargo.toml").write_text('reqwest = "0.11" # want CL201:note\n')
    wants, levels = wants_of(tmp_path)
    assert wants == {("x.go", 1, "CL101"), ("x.go", 1, "CL105"), ("Cargo.toml", 1, "CL201")}
    assert levels == {("x.go", 1, "CL105"): "error", ("Cargo.toml", 1, "CL201"): "note"}
