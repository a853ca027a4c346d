"""The regex alternation a catalog's names are searched with (a trie) finds what a plain `a|b|c` finds."""

from __future__ import annotations

import random
import re

from closelint.treeutil import alternation


def test_matches_exactly_the_words():
    words = ["Dial", "DialContext", "DialTLS", "Do", "Get", "Get_x", "a.b"]
    pattern = re.compile(alternation(words))
    for w in words:
        assert pattern.fullmatch(w), w
    for w in ["Dia", "DialC", "DialTLSx", "Gets", "D", "", "ab", "a"]:
        assert not pattern.fullmatch(w), w


def test_no_words_never_match():
    assert re.search(alternation([]), "anything at all") is None


def test_same_matches_as_a_plain_alternation():
    rng = random.Random(7)
    for _ in range(300):
        words = {"".join(rng.choice("abAB_") for _ in range(rng.randint(1, 4))) for _ in range(rng.randint(1, 8))}
        text = "".join(rng.choice("abAB_.( \n") for _ in range(400))
        plain = re.compile(r"\.\s*(" + "|".join(map(re.escape, sorted(words))) + r")\s*\(")
        trie = re.compile(r"\.\s*(" + alternation(words) + r")\s*\(")
        assert [m.span(1) for m in plain.finditer(text)] == [m.span(1) for m in trie.finditer(text)], words
