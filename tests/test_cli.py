"""The command line as users meet it: exit codes, formats, --output, config, suppressions, caching."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from conftest import assert_valid_sarif, closelint

LEAK = textwrap.dedent("""\
    package demo

    import "os"

    func size(path string) (int64, error) {
    	f, err := os.Open(path)
    	if err != nil {
    		return 0, err
    	}
    	st, err := f.Stat()
    	if err != nil {
    		return 0, err
    	}
    	return st.Size(), nil
    }
    """)
LEAK_LINE = 6

CLEAN = textwrap.dedent("""\
    package demo

    import "os"

    func size(path string) (int64, error) {
    	f, err := os.Open(path)
    	if err != nil {
    		return 0, err
    	}
    	defer f.Close()
    	st, err := f.Stat()
    	if err != nil {
    		return 0, err
    	}
    	return st.Size(), nil
    }
    """)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()  # a work tree root, found without running git
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "leak.go").write_text(LEAK)
    (tmp_path / "pkg" / "clean.go").write_text(CLEAN.replace("package demo", "package demo\n\n// clean"))
    return tmp_path


def scan(repo: Path, *args, **kw):
    return closelint("scan", *args, "--no-cache", cwd=repo, **kw)


def test_finding_exits_1_and_prints_text_with_frame_and_summary(repo):
    r = scan(repo, ".")
    assert r.returncode == 1, r.stderr
    first = r.stdout.splitlines()[0]
    assert first.startswith(f"pkg/leak.go:{LEAK_LINE}:12: CL101 [unclosed-resource] warning: ")
    assert "defer f.Close()" in first
    assert f"{LEAK_LINE} |" in r.stdout and "^^^^" in r.stdout
    assert r.stdout.rstrip().endswith("Found 1 finding in 2 files.")
    assert "\033[" not in r.stdout  # no colour when not a terminal
    assert r.stderr == ""


def test_clean_exits_0(repo):
    (repo / "pkg" / "leak.go").unlink()
    r = scan(repo)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "No findings in 1 file." in r.stdout


def test_exit_zero(repo):
    r = scan(repo, "--exit-zero")
    assert r.returncode == 0 and "CL101" in r.stdout


def test_force_color(repo):
    r = scan(repo, env={"FORCE_COLOR": "1", "NO_COLOR": None})
    assert "\033[" in r.stdout


def test_concise(repo):
    r = scan(repo, "--format", "concise")
    lines = r.stdout.splitlines()
    assert re.match(rf"pkg/leak\.go:{LEAK_LINE}:12: CL101 \[unclosed-resource\] warning: ", lines[0])
    assert "|" not in r.stdout


def test_json_is_documented_shape(repo):
    r = scan(repo, "--format", "json")
    assert r.returncode == 1
    items = json.loads(r.stdout)
    assert len(items) == 1
    item = items[0]
    assert set(item) == {"code", "name", "level", "path", "line", "column", "end_line", "end_column",
                         "message", "function", "related"}
    assert (item["code"], item["name"], item["path"], item["line"], item["column"]) == (
        "CL101", "unclosed-resource", "pkg/leak.go", LEAK_LINE, 12)
    assert item["function"] == "size"


def test_github_workflow_commands(repo):
    r = scan(repo, "--format", "github")
    assert re.fullmatch(
        rf"::warning file=pkg/leak\.go,line={LEAK_LINE},col=12,endLine={LEAK_LINE},endColumn=\d+,title=CL101::.+\n",
        r.stdout)


def test_sarif_is_valid_and_github_ready(repo):
    r = scan(repo, "--format", "sarif")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert_valid_sarif(doc)
    assert len(doc["runs"]) == 1
    run = doc["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "closelint" and driver["version"] and driver["informationUri"]
    rule = driver["rules"][0]
    assert {"id", "name", "shortDescription", "fullDescription", "help", "defaultConfiguration",
            "properties"} <= set(rule)
    assert rule["help"]["markdown"].startswith("# CL101") and "## Use instead" in rule["help"]["markdown"]
    assert rule["properties"]["precision"] and rule["properties"]["tags"]
    assert run["columnKind"] == "utf16CodeUnits"
    assert run["automationDetails"]["id"] == "closelint/"
    (result,) = run["results"]
    assert result["ruleId"] == "CL101" and driver["rules"][result["ruleIndex"]]["id"] == "CL101"
    assert result["level"] == "warning"
    loc = result["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "pkg/leak.go", "uriBaseId": "%SRCROOT%"}
    assert loc["region"]["startLine"] == LEAK_LINE and loc["region"]["endLine"] == LEAK_LINE
    assert "startColumn" in loc["region"] and "endColumn" in loc["region"]
    assert set(result["partialFingerprints"]) == {"primaryLocationLineHash"}
    assert "suppressions" not in result


def test_sarif_fingerprint_survives_code_moving_above(repo):
    def fp():
        doc = json.loads(scan(repo, "--format", "sarif").stdout)
        (result,) = doc["runs"][0]["results"]
        return result["partialFingerprints"]["primaryLocationLineHash"], \
            result["locations"][0]["physicalLocation"]["region"]["startLine"]

    before = fp()
    leak = repo / "pkg" / "leak.go"
    leak.write_text(leak.read_text().replace('import "os"', 'import "os"\n\n// a comment\n// and another'))
    after = fp()
    assert after[1] == before[1] + 3 and after[0] == before[0]


def test_sarif_columns_are_utf16(repo):
    src = LEAK.replace('f, err := os.Open(path)', 'f, err := /* 🦀é */ os.Open(path)')
    (repo / "pkg" / "leak.go").write_text(src)
    doc = json.loads(scan(repo, "--format", "sarif").stdout)
    region = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]
    text_col = json.loads(scan(repo, "--format", "json").stdout)[0]["column"]
    # The crab is one character but two UTF-16 code units (and four UTF-8 bytes).
    assert region["startColumn"] == text_col + 1
    assert text_col == 12 + len("/* 🦀é */ ")


def test_output_file_written_atomically(repo):
    r = scan(repo, "--format", "sarif", "--output", "out.sarif")
    assert r.returncode == 1 and r.stdout == ""
    assert_valid_sarif(json.loads((repo / "out.sarif").read_text()))
    assert [p.name for p in repo.iterdir() if p.name.startswith(".out.sarif")] == []


def test_output_to_a_fifo_or_device_writes_into_it(repo):
    # `--output /dev/null` as root once replaced the device with a regular file: a rename is only
    # for regular files. A FIFO stands in for any special file here.
    import os
    import threading

    fifo = repo / "report.pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    r = scan(repo, "--format", "concise", "--output", str(fifo))
    reader.join(timeout=60)
    assert r.returncode == 1 and received and received[0].startswith("pkg/leak.go:")
    assert fifo.is_fifo()


def test_output_through_a_symlink_replaces_its_target(repo):
    (repo / "reports").mkdir()
    (repo / "reports" / "out.txt").write_text("old")
    (repo / "latest.txt").symlink_to(repo / "reports" / "out.txt")
    scan(repo, "--format", "concise", "--output", "latest.txt")
    assert (repo / "latest.txt").is_symlink()
    assert (repo / "reports" / "out.txt").read_text().startswith("pkg/leak.go:")


def test_output_into_missing_folder_is_one_line_error(repo):
    r = scan(repo, "--output", "no/such/dir/out.txt")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_select_and_ignore_by_code_or_name(repo):
    assert scan(repo, "--ignore", "unclosed-resource").returncode == 0
    assert scan(repo, "--ignore", "CL101").returncode == 0
    assert scan(repo, "--select", "cl101").returncode == 1
    r = scan(repo, "--select", "CL999")
    assert r.returncode == 2 and "CL999" in r.stderr and r.stderr.count("\n") == 1


@pytest.mark.parametrize("name,content", [
    ("closelint.toml", 'ignore = ["CL101"]\n'),
    (".closelint.toml", 'ignore = ["unclosed-resource"]\n'),
    ("pyproject.toml", '[project]\nname = "x"\n\n[tool.closelint]\nignore = ["CL101"]\n'),
])
def test_config_found_upward(repo, name, content):
    (repo / name).write_text(content)
    r = closelint("scan", "--no-cache", ".", cwd=repo / "pkg")
    assert r.returncode == 0, r.stdout + r.stderr


def test_pyproject_without_section_is_passed_over(repo):
    (repo / "pyproject.toml").write_text('[project]\nname = "x"\n')
    (repo.parent / "closelint.toml").write_text("")  # never reached: above the repo only by accident
    assert scan(repo).returncode == 1


def test_explicit_config(repo, tmp_path_factory):
    cfg = tmp_path_factory.mktemp("cfg") / "custom.toml"
    cfg.write_text('[CL101]\nlevel = "error"\n')
    items = json.loads(scan(repo, "--config", str(cfg), "--format", "json").stdout)
    assert items[0]["level"] == "error"


@pytest.mark.parametrize("content,words", [
    ("selct = []\n", "unknown key 'selct'"),
    ('select = ["CL999"]\n', "unknown rule 'CL999'"),
    ('[CL101]\nlevel = "fatal"\n', "level must be one of"),
    ('[CL101]\nbogus = 1\n', "unknown key 'bogus'"),
    ("exclude = 'vendor'\n", "exclude must be a list"),
    ("select = [\n", "invalid TOML"),
    ('[CL101]\nresources = "x"\n', "must be an array of tables"),
    ('[CL105]\ncancel-name-pattern = "(unclosed"\n', "not a valid regular expression"),
    ('extend-exclude = ["gen/[z-a]"]\n', "extend-exclude: invalid pattern 'gen/[z-a]'"),
    ('[per-file-ignores]\n"x\\\\" = ["CL101"]\n', "per-file-ignores: invalid pattern"),
])
def test_config_errors_are_one_line_exit_2(repo, content, words):
    (repo / "closelint.toml").write_text(content)
    r = scan(repo)
    assert r.returncode == 2, r.stdout
    assert r.stderr.count("\n") == 1 and words in r.stderr and "closelint.toml" in r.stderr
    assert "Traceback" not in r.stderr


def test_missing_config_file(repo):
    r = scan(repo, "--config", "nope.toml")
    assert r.returncode == 2 and "nope.toml" in r.stderr and r.stderr.count("\n") == 1


def test_per_file_ignores(repo):
    (repo / "closelint.toml").write_text('[per-file-ignores]\n"pkg/leak.go" = ["CL101"]\n')
    assert scan(repo).returncode == 0
    (repo / "closelint.toml").write_text('[per-file-ignores]\n"*.go" = ["CL102"]\n')
    assert scan(repo).returncode == 1


@pytest.mark.parametrize("directive", [
    "//closelint:ignore CL101 -- owned by the cache",
    "// closelint:ignore unclosed-resource",
    "//nolint:closelint // owned by the cache",
    "//nolint:all",
    "//closelint:ignore",
])
def test_suppression_same_line(repo, directive):
    leak = repo / "pkg" / "leak.go"
    leak.write_text(LEAK.replace("f, err := os.Open(path)", f"f, err := os.Open(path) {directive}"))
    r = scan(repo)
    assert r.returncode == 0, r.stdout
    assert "1 suppressed" in r.stdout


def test_suppression_line_above_and_wrong_code(repo):
    leak = repo / "pkg" / "leak.go"
    leak.write_text(LEAK.replace("\tf, err := os.Open(path)", "\t//closelint:ignore CL101 -- why\n\tf, err := os.Open(path)"))
    assert scan(repo).returncode == 0
    leak.write_text(LEAK.replace("\tf, err := os.Open(path)", "\t//closelint:ignore CL102 -- why\n\tf, err := os.Open(path)"))
    assert scan(repo).returncode == 1
    leak.write_text(LEAK.replace("\tf, err := os.Open(path)", "\t//nolint:errcheck\n\tf, err := os.Open(path)"))
    assert scan(repo).returncode == 1


def test_include_suppressed(repo):
    leak = repo / "pkg" / "leak.go"
    leak.write_text(LEAK.replace("f, err := os.Open(path)", "f, err := os.Open(path) //closelint:ignore CL101 -- pooled"))
    doc = json.loads(scan(repo, "--format", "sarif", "--include-suppressed").stdout)
    assert_valid_sarif(doc)
    (result,) = doc["runs"][0]["results"]
    assert result["suppressions"] == [{"kind": "inSource", "justification": "pooled"}]
    assert json.loads(scan(repo, "--format", "sarif").stdout)["runs"][0]["results"] == []
    items = json.loads(scan(repo, "--format", "json", "--include-suppressed").stdout)
    assert items[0]["suppressed"] == "pooled"


def test_statistics(repo):
    r = scan(repo, "--statistics")
    assert re.search(r"^1\s+CL101\s+unclosed-resource$", r.stdout, re.M)


def test_rules_and_rule(repo):
    r = closelint("rules")
    assert r.returncode == 0 and "CL101  unclosed-resource" in r.stdout
    rules = json.loads(closelint("rules", "--format", "json").stdout)
    assert rules[0]["code"] == "CL101" and rules[0]["name"] == "unclosed-resource"
    help_text = closelint("rule", "unclosed-resource").stdout
    doc = json.loads(scan(repo, "--format", "sarif").stdout)
    assert help_text == doc["runs"][0]["tool"]["driver"]["rules"][0]["help"]["markdown"]
    for section in ("## What it does", "## Why is this bad?", "## Example", "## Use instead"):
        assert section in help_text
    r = closelint("rule", "CL999")
    assert r.returncode == 2 and r.stderr.count("\n") == 1


def test_version():
    from closelint import __version__

    r = closelint("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"closelint {__version__}"


@pytest.mark.parametrize("args", [["scan", "--bogus"], ["scan", "--format", "xml"], ["frobnicate"],
                                  ["scan", "--jobs", "0"], ["scan", "no/such/path"]])
def test_usage_errors_are_one_line_exit_2(repo, args):
    r = closelint(*args, cwd=repo)
    assert r.returncode == 2, r.stdout
    assert r.stderr.startswith("closelint: error: ") and r.stderr.count("\n") == 1


def _many_packages(root: Path, n: int = 12):
    for i in range(n):
        d = root / f"p{i:02d}"
        d.mkdir()
        (d / "a.go").write_text(LEAK.replace("package demo", f"package p{i}"))
        (d / "b.go").write_text(CLEAN.replace("package demo", f"package p{i}").replace("func size", "func size2"))


def test_output_identical_whatever_jobs(repo):
    _many_packages(repo)
    one = scan(repo, "--jobs", "1", "--format", "json")
    two = scan(repo, "--jobs", "2", "--format", "json")
    assert one.returncode == two.returncode == 1
    assert one.stdout == two.stdout and len(json.loads(one.stdout)) == 13


def test_cache_hits_and_invalidates(repo, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    env = {"CLOSELINT_CACHE_DIR": str(cache)}
    _many_packages(repo, 5)
    first = closelint("scan", ".", "--format", "json", cwd=repo, env=env)
    assert any(cache.glob("??/*.marshal"))  # one entry per unit
    second = closelint("scan", ".", "--format", "json", cwd=repo, env=env)
    assert first.stdout == second.stdout and first.returncode == 1
    (repo / "pkg" / "leak.go").write_text(CLEAN)
    third = closelint("scan", ".", "--format", "json", cwd=repo, env=env)
    assert len(json.loads(third.stdout)) == len(json.loads(first.stdout)) - 1


def test_cache_rechecks_files_read_outside_the_unit(tmp_path, tmp_path_factory):
    """src/proxy/tests/ is its own unit, but whether it is test code is said by ../mod.rs: a cached
    result is reused only while what the analysis read outside the unit is unchanged."""
    env = {"CLOSELINT_CACHE_DIR": str(tmp_path_factory.mktemp("cache"))}
    fixture = Path(__file__).parent / "fixtures" / "CL202" / "test_dir_module"
    (tmp_path / "proxy" / "tests").mkdir(parents=True)
    (tmp_path / "proxy" / "tests" / "mod.rs").write_bytes((fixture / "tests" / "mod.rs").read_bytes())
    parent = (fixture / "mod.rs").read_text()
    (tmp_path / "proxy" / "mod.rs").write_text(parent.replace("#[cfg(test)]\nmod tests;", "mod tests;"))

    def reported():
        r = closelint("scan", ".", "--format", "json", cwd=tmp_path, env=env)
        return sorted(i["path"] for i in json.loads(r.stdout))

    assert reported() == ["proxy/mod.rs", "proxy/tests/mod.rs"]
    assert reported() == ["proxy/mod.rs", "proxy/tests/mod.rs"]  # from the cache
    (tmp_path / "proxy" / "mod.rs").write_text(parent)  # now `#[cfg(test)] mod tests;`
    assert reported() == ["proxy/mod.rs"]


def test_module_entry_point(repo):
    r = closelint("scan", "pkg/leak.go", "--no-cache", "--format", "concise", cwd=repo)
    assert r.returncode == 1 and r.stdout.startswith("pkg/leak.go:")


def test_example_code_is_reported_as_note(repo):
    (repo / "examples" / "demo").mkdir(parents=True)
    (repo / "examples" / "demo" / "leak.go").write_text(LEAK)
    items = json.loads(scan(repo, "--format", "json").stdout)
    assert {(i["path"], i["level"]) for i in items} == {("pkg/leak.go", "warning"), ("examples/demo/leak.go", "note")}
    (repo / "closelint.toml").write_text("example-paths = []\n")
    items = json.loads(scan(repo, "--format", "json").stdout)
    assert {i["level"] for i in items} == {"warning"}


def test_path_globs_are_relative_to_the_scanned_folder_outside_cwd(repo, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("cwd")
    (repo / "examples").mkdir()
    (repo / "examples" / "leak.go").write_text(LEAK)
    items = json.loads(closelint("scan", "--no-cache", "--format", "json", str(repo), cwd=elsewhere).stdout)
    assert sorted(i["level"] for i in items) == ["note", "warning"]


def test_sarif_uris_without_a_work_tree(tmp_path_factory):
    """No .git: %SRCROOT% is the folder the scanned paths share, and every uri is relative to it."""
    top = tmp_path_factory.mktemp("nogit")
    for name in ("a", "b"):
        (top / name).mkdir()
        (top / name / "leak.go").write_text(LEAK)
    r = closelint("scan", "--no-cache", "--format", "sarif", str(top / "a"), str(top / "b"), cwd=top.parent)
    doc = json.loads(r.stdout)
    assert_valid_sarif(doc)
    run = doc["runs"][0]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == top.resolve().as_uri() + "/"
    uris = sorted(x["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for x in run["results"])
    assert uris == ["a/leak.go", "b/leak.go"]
