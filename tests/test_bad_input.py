"""Bad input never crashes a scan: the scan goes on, names the file in one line on stderr, and
records it in SARIF's toolExecutionNotifications."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import assert_valid_sarif, closelint
from test_cli import LEAK, LEAK_LINE


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "leak.go").write_text(LEAK)
    return tmp_path


def scan(repo: Path, *args):
    return closelint("scan", "--no-cache", *args, cwd=repo, timeout=60)


def notified(repo: Path, rel: str) -> dict:
    """Scan as SARIF; assert the good finding survives and rel is named once on stderr and in SARIF."""
    r = scan(repo, "--format", "sarif")
    assert "Traceback" not in r.stderr
    doc = json.loads(r.stdout)
    assert_valid_sarif(doc)
    results = doc["runs"][0]["results"]
    assert any(x["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "good/leak.go"
               for x in results), "the rest of the scan went on"
    lines = [ln for ln in r.stderr.splitlines() if rel in ln]
    assert len(lines) == 1, r.stderr
    notes = doc["runs"][0]["invocations"][0].get("toolExecutionNotifications", [])
    mine = [n for n in notes
            if n["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == rel]
    assert len(mine) == 1, notes
    return {"returncode": r.returncode, "stderr": lines[0], "note": mine[0], "results": results}


def test_binary_file(repo):
    (repo / "good" / "blob.go").write_bytes(b"\x7fELF\x00\x01\x02" + bytes(range(256)) * 8)
    out = notified(repo, "good/blob.go")
    assert "binary" in out["stderr"] and out["returncode"] == 1


def test_invalid_utf8_still_analysed(repo):
    (repo / "bad").mkdir()
    (repo / "bad" / "latin1.go").write_bytes(LEAK.replace("package demo", "package demo // caf\xe9").encode("latin-1"))
    out = notified(repo, "bad/latin1.go")
    assert "UTF-8" in out["stderr"]
    assert any(x["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "bad/latin1.go"
               and x["locations"][0]["physicalLocation"]["region"]["startLine"] == LEAK_LINE
               for x in out["results"]), "what decoded was analysed"


def test_syntax_error_analyses_what_parsed(repo):
    (repo / "bad").mkdir()
    broken = LEAK + "\nfunc broken( {\n\tif x := ; {\n"
    (repo / "bad" / "broken.go").write_text(broken)
    out = notified(repo, "bad/broken.go")
    assert "could not parse line" in out["stderr"]
    assert any(x["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "bad/broken.go"
               for x in out["results"]), "the function that parsed was analysed"


@pytest.mark.parametrize("shape", ["parens", "blocks", "binary", "calls", "literals", "goroutines"])
def test_deep_nesting_no_recursion_error(repo, shape):
    n = 20_000
    body = {
        "parens": "x := " + "(" * n + "1" + ")" * n,
        "blocks": "{" * n + "}" * n,
        "binary": "x := " + "1+" * n + "1",
        "calls": "x := " + "f(" * n + "1" + ")" * n,
        "literals": "x := " + "func() int { return " * n + "1" + " }()" * n,
        "goroutines": "go func() {" * n + "}()" * n,
    }[shape]
    (repo / "deep").mkdir()
    (repo / "deep" / "deep.go").write_text(f"package deep\n\nimport \"os\"\n\nfunc g() {{\n\t{body}\n\t_ = x\n"
                                           f"\tf, _ := os.Open(\"p\")\n\t_ = f\n}}\n".replace("\t_ = x\n", "\t_ = x\n" if "x :=" in body else ""))
    r = scan(repo, "--format", "json")
    assert r.returncode == 1 and "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    paths = {i["path"] for i in json.loads(r.stdout)}
    assert "deep/deep.go" in paths and "good/leak.go" in paths


def test_fifo_does_not_hang(repo):
    os.mkfifo(repo / "good" / "pipe.go")
    out = notified(repo, "good/pipe.go")
    assert "not a regular file" in out["stderr"]
    r = closelint("scan", "--no-cache", "good/pipe.go", "good/leak.go", cwd=repo, timeout=30)
    assert r.returncode == 1 and "pipe.go" in r.stderr


def test_fifo_named_gitignore_does_not_hang(repo):
    os.mkfifo(repo / "good" / ".gitignore")
    r = scan(repo, "--format", "json")
    assert r.returncode == 1 and "good/leak.go" in {i["path"] for i in json.loads(r.stdout)}


def test_symlink_loops(repo):
    os.symlink("..", repo / "good" / "up")  # a folder loop
    os.symlink("b.go", repo / "good" / "a.go")  # a file loop
    os.symlink("a.go", repo / "good" / "b.go")
    r = scan(repo, "--format", "json")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert [i["path"] for i in json.loads(r.stdout)] == ["good/leak.go"]
    assert "a.go" in r.stderr and "b.go" in r.stderr


def test_unreadable_file(repo):
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    p = repo / "good" / "secret.go"
    p.write_text(LEAK)
    p.chmod(0)
    out = notified(repo, "good/secret.go")
    assert "cannot read" in out["stderr"]


def test_empty_and_whitespace_files(repo):
    (repo / "good" / "empty.go").write_bytes(b"")
    (repo / "good" / "space.go").write_bytes(b"\n\n   \n")
    r = scan(repo, "--format", "json")
    assert r.returncode == 1 and r.stderr == ""


def test_missing_path(repo):
    r = scan(repo, "does/not/exist.go")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "does/not/exist.go" in r.stderr


def test_broken_symlink_named_explicitly(repo):
    os.symlink("nowhere.go", repo / "dangling.go")
    r = scan(repo, "dangling.go", "good/leak.go")
    assert r.returncode == 1 and "dangling.go" in r.stderr and "Traceback" not in r.stderr


def test_broken_toml_named_once_and_scan_goes_on(repo):
    (repo / "a").mkdir()
    (repo / "a" / "Cargo.toml").write_text('[package]\nname = "a"\n[dependencies]\nreqwest = { version = "0.11"\n')
    (repo / "b").mkdir()
    (repo / "b" / "Cargo.toml").write_text('[package]\nname = "b"\nversion = "0.1.0"\n\n[dependencies]\nreqwest = "0.11"\n')
    out = notified(repo, "a/Cargo.toml")
    assert "invalid TOML" in out["stderr"]
    assert any(x["ruleId"] == "CL201" for x in out["results"]), "the other manifest was analysed"


def test_deep_rust_nesting(repo):
    n = 20_000
    (repo / "deep.rs").write_text("fn main() {\n    let x = " + "(" * n + "1" + ")" * n + ";\n"
                                  "    loop { let v = Box::new(x); Box::leak(v); }\n}\n"
                                  "fn g() {" + "{" * n + "}" * n + "}\n")
    r = scan(repo, "--format", "json")
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    assert r.returncode == 1
