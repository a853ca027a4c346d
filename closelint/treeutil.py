"""Iterative helpers over tree-sitter nodes.

Nothing here recurses on the tree's depth: a 20,000-deep expression must not raise RecursionError.
Rules should use these (or tree-sitter queries) instead of writing recursive walks.
"""

from __future__ import annotations

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
