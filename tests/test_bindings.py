"""flow.Bindings resolves a function's locals name by name, walking only where the name is written;
the answers must be exactly those of one walk of the whole function."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from closelint import parsing
from closelint.golang import flow

SCOPING = b"""package p

func scoping(x int, rows []int) (err error) {
	if x := x + 1; x > 0 {
		use(x)
	}
	if y, err := f(x); err != nil {
		_ = y
		return err
	}
	for i, x := range rows {
		go func() { use(i, x) }()
	}
	{
		x, z := 2, 3
		x, w := 4, 5
		_, _ = z, w
	}
	switch v := any(x).(type) {
	case int:
		use(v)
	}
	p := point{x: x}
	use(p.x)
	\xc3\xa9x := 1
	use(\xc3\xa9x, x)
	return nil
}
"""


def _declarations(source: bytes):
    tree = parsing.parser("go").parse(source)
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type in ("function_declaration", "method_declaration"):
            yield node
            continue
        stack.extend(node.children)


def _identifiers(node) -> list:
    out, stack = [], [node]
    while stack:
        n = stack.pop()
        if n.type == "identifier":
            out.append(n)
        stack.extend(n.children)
    return out


def _shape(b):
    if b is None:
        return None
    return (b.name, b.node.id, b.kind, b.scope_node.id, getattr(b.value, "id", None), b.call_index,
            tuple(u.id for u in b.uses), tuple(d.id for d in b.defs))


def _resolved(decl, data: bytes, names_by_parts: int, order: list, monkeypatch) -> dict:
    monkeypatch.setattr(flow.Bindings, "NAMES_BY_PARTS", names_by_parts)
    bindings = flow.Bindings(decl, data)
    out = {ident.id: bindings.resolve(ident) for ident in order}
    # one Binding object per variable, however it was reached
    by_declaration = {}
    for b in out.values():
        if b is not None:
            assert by_declaration.setdefault(b.node.id, b) is b
    return {key: _shape(b) for key, b in out.items()}


def _sources() -> list[tuple[str, bytes]]:
    fixtures = Path(__file__).parent / "fixtures"
    return [("scoping.go", SCOPING)] + [(str(p.relative_to(fixtures)), p.read_bytes())
                                        for p in sorted(fixtures.rglob("*.go"))]


@pytest.mark.parametrize("name,source", _sources(), ids=lambda v: v if isinstance(v, str) else "")
def test_name_by_name_equals_one_full_walk(name, source, monkeypatch):
    rng = random.Random(name)
    resolved = 0
    for decl in _declarations(source):
        idents = _identifiers(decl)
        full = _resolved(decl, source, 0, idents, monkeypatch)  # 0: the first question walks everything
        shuffled = idents[:]
        rng.shuffle(shuffled)
        assert _resolved(decl, source, 10**6, shuffled, monkeypatch) == full  # every name on its own
        assert _resolved(decl, source, 3, shuffled, monkeypatch) == full  # three on their own, then the rest
        resolved += sum(b is not None for b in full.values())
    assert resolved or b"func" not in source  # the comparison is not between two empty answers


def test_scoping_answers():
    decl = next(_declarations(SCOPING))
    bindings = flow.Bindings(decl, SCOPING)
    idents = sorted(_identifiers(decl), key=lambda n: n.start_byte)

    def at(word: str, nth: int = 0):
        hits = [n for n in idents if n.text == word.encode()]
        return hits[nth]

    param = bindings.resolve(at("x", 0))
    assert param.kind == "param"
    in_if = bindings.resolve(at("x", 1))
    assert in_if.kind == "short" and in_if is not param
    assert bindings.resolve(at("x", 2)) is param  # the right side of `x := x + 1` is the outer x
    assert bindings.resolve(at("x", 3)) is in_if and bindings.resolve(at("x", 4)) is in_if
    assert bindings.resolve(at("err", 0)).kind == "result"
    own_err = bindings.resolve(at("err", 1))
    assert own_err.kind == "short" and bindings.resolve(at("err", 3)) is own_err
    assert bindings.resolve(at("x", 5)) is param
    ranged = bindings.resolve(at("x", 6))
    assert ranged.kind == "range" and bindings.resolve(at("x", 7)) is ranged  # captured by the literal
    inner = bindings.resolve(at("x", 8))
    assert bindings.resolve(at("x", 9)) is inner and at("x", 9) in inner.defs  # `x, w :=` reuses it
    assert bindings.resolve(at("x", 10)) is param  # back outside the block
    assert bindings.resolve(at("v", 1)).kind == "alias"
    assert bindings.resolve(at("x", 11)) is None  # the struct key in point{x: x}
    assert bindings.resolve(at("x", 12)) is param
    assert bindings.resolve(at("\u00e9x")).kind == "short"
    assert bindings.resolve(at("x", 13)) is param  # `\u00e9x` is another name
    assert param.uses == [at("x", i) for i in (2, 5, 10, 12, 13)]
