"""Iterative helpers over tree-sitter nodes.

Nothing here recurses on the tree's depth: a 20,000-deep expression must not raise RecursionError.
Rules should use these (or tree-sitter queries) instead of writing recursive walks.
"""

from __future__ import annotations

import re
from typing import Callable, Iterator


def walk(node, prune: Callable | None = None) -> Iterator:
    """Every node under node (itself included), in document order.

    prune(n) -> True skips n's children (n itself is still yielded), e.g. to stay out of nested
    function literals.
    """
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        if prune is not None and n is not node and prune(n):
            continue
        children = n.children
        if children:
            stack.extend(reversed(children))


def walk_named(node, prune: Callable | None = None) -> Iterator:
    for n in walk(node, prune):
        if n.is_named:
            yield n


# py-tree-sitter nodes hold no parent pointer: Node.parent walks down from the root, so climbing k
# levels costs O(depth * k). Real code is a few dozen levels deep; a 20,000-deep expression would make
# every climb quadratic. Climbs stop after MAX_ANCESTRY levels: past that, a rule sees no enclosing
# function or loop and stays silent, which is the safe answer.
MAX_ANCESTRY = 400


def ancestors(node, limit: int = MAX_ANCESTRY) -> Iterator:
    """The node's parent, grandparent... up to the root or `limit` levels."""
    n = node.parent
    while n is not None and limit > 0:
        yield n
        n = n.parent
        limit -= 1


def path_to(node, root, limit: int = MAX_ANCESTRY) -> list:
    """The nodes from root down to node, both included: O(depth) `child_with_descendant` calls, where
    climbing with Node.parent costs O(depth) per level. [] when node is not under root, or is more
    than `limit` levels below it (see MAX_ANCESTRY)."""
    out = [root]
    n = root
    while n.id != node.id:
        n = n.child_with_descendant(node)
        if n is None or len(out) > limit:
            return []
        out.append(n)
    return out


def paths_at(root, spans) -> Iterator[list]:
    """For each (start, end) of spans, given in increasing order of start: the path from root down to
    the smallest node (named or not) spanning those bytes, root first ([root] when none is smaller).

    With offsets found in the file's bytes (a keyword, a name), this reaches the nodes and their
    ancestors without a query: a tree-sitter query visits every node of the tree and costs about as
    much as parsing it, so a rule looking for a few rare things finds them from the text instead.
    Consecutive spans share the way down to their common ancestor, so however deep the nesting
    (`go func() { go func() {...`, 20,000 levels), all the spans of a file cost one descent.

    The list yielded is the walk's own stack: read it (or copy it) before asking for the next."""
    stack = [root]
    for start, end in spans:
        while len(stack) > 1 and not (stack[-1].start_byte <= start and end <= stack[-1].end_byte):
            stack.pop()
        # Searched from the deepest node already known to span the bytes (never from the root: the
        # search costs the depth it covers). Node.first_child_for_byte would do one level at a time
        # but crashes the interpreter when no child qualifies (py-tree-sitter 0.25/0.26).
        top = stack[-1]
        node = top.descendant_for_byte_range(start, end)
        if node is not None and node.id != top.id:
            stack.extend(path_to(node, top)[1:])
        yield stack


def word_offsets(data: bytes, word: bytes, start: int = 0, end: int | None = None, *,
                 ascii_words: bool = False) -> Iterator[int]:
    """Offsets of word in data[start:end] where it stands as a whole word (identifier boundaries).

    A non-ASCII neighbour counts as part of a word, unless ascii_words: then only ASCII letters,
    digits and `_` do, and the offsets are a superset of where an identifier spelled `word` may
    stand, whatever the lexer makes of the bytes around it (it never splits two ASCII word bytes).

    bytes.find and a look at the two neighbours: a regex that begins with \\b or a lookbehind is
    tried at every position and costs ten to thirty times as much on a large file."""
    end = len(data) if end is None else end
    n = len(word)
    is_word_byte = _is_ascii_word_byte if ascii_words else _is_word_byte
    i = data.find(word, start, end)
    while i >= 0:
        j = i + n
        if (i == 0 or not is_word_byte(data[i - 1])) and (j >= len(data) or not is_word_byte(data[j])):
            yield i
        i = data.find(word, j, end)


def word_spans(data: bytes, word: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int]]:
    """(start, end) of every whole-word occurrence of word, for paths_at."""
    return ((i, i + len(word)) for i in word_offsets(data, word, start, end))


def needle_spans(data: bytes, needle: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int]]:
    """(start, end) of every occurrence of needle in data[start:end], for paths_at."""
    end = len(data) if end is None else end
    i = data.find(needle, start, end)
    while i >= 0:
        yield i, i + len(needle)
        i = data.find(needle, i + len(needle), end)


def alternation(words) -> str:
    """A regex matching exactly one of words, written as a trie: `Dial(?:Context|TLS)?` for Dial,
    DialContext and DialTLS. Python's re tries the branches of a plain `a|b|c` one after another at
    every position where the first character fits; the trie reads each character once (with a
    catalog's hundred names, 2.5 times faster over a repository). `(?!)` (never matches) for none."""
    trie: dict = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}  # a word ends here

    def emit(node) -> str:
        branches = [re.escape(ch) + emit(node[ch]) for ch in sorted(k for k in node if k)]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return emit(trie) if trie else "(?!)"


def _is_word_byte(b: int) -> bool:
    return b == 95 or 48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122 or b >= 128


def _is_ascii_word_byte(b: int) -> bool:
    return b == 95 or 48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122


def text(node) -> str:
    return node.text.decode("utf-8", "replace") if node is not None else ""


def first_error(root):
    """The first ERROR or MISSING node in document order, or None."""
    cursor = [root]
    while cursor:
        n = cursor.pop()
        if n.is_error or n.is_missing:
            return n
        if n.has_error:
            cursor.extend(reversed(n.children))
    return None
