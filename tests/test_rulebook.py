"""The rulebook is data: every rule file is complete, consistent with its module and the fixed codes."""

from __future__ import annotations

import tomllib

import pytest

from closelint.rulebook import LEVELS, RESERVED, load_rules, rule_files

RULE_FILES = rule_files()


@pytest.mark.parametrize("path", RULE_FILES, ids=[p.stem for p in RULE_FILES])
def test_rule_file_complete(path):
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    code, name = data["code"], data["name"]
    assert RESERVED.get(code) == name, "codes and names are fixed forever"
    assert path.stem == f"{code}-{name}"
    assert data["level"] in LEVELS
    assert data["precision"] in ("very-high", "high", "medium", "low")
    assert set(data["languages"]) <= {"go", "rust", "cargo"} and data["languages"]
    assert 0 < len(data["short-description"]) <= 1024 and 0 < len(data["full-description"]) <= 1024
    assert 0 < len(data["tags"]) <= 20
    for section in ("what-it-does", "why-is-this-bad", "example", "use-instead"):
        assert data["help"][section].strip(), section
    for section in ("example", "use-instead"):
        assert "```" in data["help"][section], f"{section} shows code"


def test_every_rule_loads_with_its_module():
    import importlib

    rules = load_rules()
    assert "CL101" in rules
    for rule in rules.values():
        module = importlib.import_module(rule.module)
        assert callable(module.check), rule.code


def test_rulebook_ships_in_the_wheel():
    import pathlib

    pyproject = tomllib.loads((pathlib.Path(__file__).parent.parent / "pyproject.toml").read_text())
    force = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert force == {"rules": "closelint/_rulebook"}
