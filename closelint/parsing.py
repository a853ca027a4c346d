"""tree-sitter languages and parsers, created on first use (importing a grammar costs start-up time)."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=None)
def language(name: str):
    import tree_sitter

    if name == "go":
        import tree_sitter_go as grammar
    elif name == "rust":
        import tree_sitter_rust as grammar
    elif name == "toml":
        import tree_sitter_toml as grammar
    else:  # pragma: no cover - a programming error
        raise ValueError(f"no grammar for {name}")
    return tree_sitter.Language(grammar.language())


@lru_cache(maxsize=None)
def parser(name: str):
    import tree_sitter

    return tree_sitter.Parser(language(name))


@lru_cache(maxsize=None)
def query(lang: str, source: str):
    """A compiled tree-sitter query; compiled once per process and reused by every file."""
    import tree_sitter

    return tree_sitter.Query(language(lang), source)


def captures(lang: str, source: str, node) -> dict:
    """Run a query (C-side) under node: {capture name: [nodes in document order]}."""
    import tree_sitter

    return tree_sitter.QueryCursor(query(lang, source)).captures(node)


def matches(lang: str, source: str, node) -> list:
    """Run a query under node: [(pattern index, {capture name: [nodes]})]."""
    import tree_sitter

    return tree_sitter.QueryCursor(query(lang, source)).matches(node)
