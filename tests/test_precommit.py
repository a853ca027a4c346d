"""The pre-commit hook as users add it: the manifest validates, and `pre-commit try-repo` runs
closelint on the files of a commit (installing this checkout into pre-commit's own environment)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from test_cli import CLEAN, LEAK

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="pre-commit needs git")


def _pre_commit(*args, cwd, env):
    return subprocess.run([sys.executable, "-m", "pre_commit", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture
def env(tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("pre-commit-home")
    return {**os.environ, "PRE_COMMIT_HOME": str(home), "NO_COLOR": "1",
            "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}


def test_manifest_is_valid(env):
    r = _pre_commit("validate-manifest", str(ROOT / ".pre-commit-hooks.yaml"), cwd=ROOT, env=env)
    assert r.returncode == 0, r.stdout + r.stderr


def test_try_repo(tmp_path: Path, env):
    project = tmp_path / "project"
    (project / "svc").mkdir(parents=True)
    (project / "svc" / "leak.go").write_text(LEAK)
    (project / "svc" / "ok.go").write_text(CLEAN.replace("func size", "func size2"))
    (project / "README.md").write_text("not scanned\n")
    subprocess.run(["git", "init", "-q"], cwd=project, check=True, env=env)
    subprocess.run(["git", "add", "."], cwd=project, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", "x"], cwd=project, check=True, env=env)

    r = _pre_commit("try-repo", str(ROOT), "closelint", "--all-files", cwd=project, env=env)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "svc/leak.go:6:12: CL101 [unclosed-resource]" in out
    assert "ok.go:" not in out and "README" not in out

    (project / "svc" / "leak.go").write_text(CLEAN)
    r = _pre_commit("try-repo", str(ROOT), "closelint", "--all-files", cwd=project, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
