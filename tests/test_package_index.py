"""The Go package index reads declared names from a file's bytes before deciding to parse it."""

from __future__ import annotations

from closelint.golang.package import _declared_names


def test_names_of_every_top_level_form():
    src = b"""package p

import "os"

func Open(p string) (*os.File, error) { return os.Open(p) }
func (r *reader) Close() error { return nil }
func (l *List[T]) Push(v T) {}
func Map[T, U any](xs []T, f func(T) U) []U { return nil }
type reader struct{ f *os.File }
type (
\tgroupA struct {
\t\tfieldNotAName int
\t}
\tgroupB = int
)
var single = os.Stdout
var a, b = 1, 2
var (
\tc, d int
\te = map[string]int{
\t\t"notAName": 1,
\t}
)
const (
\tA = iota
\tB
)
const z = 1
"""
    names = _declared_names(src)
    assert names == {b"Open", b"Close", b"Push", b"Map", b"reader", b"groupA", b"groupB", b"single",
                     b"a", b"b", b"c", b"d", b"e", b"A", b"B", b"z"}


def test_crlf_layout():
    names = _declared_names(b"package p\r\n\r\nfunc F() {}\r\nconst (\r\n\tX = 1\r\n)\r\n")
    assert names == {b"F", b"X"}


def test_indented_declaration_is_not_read_from_bytes():
    assert _declared_names(b"package p\n\n  func F() {}\n") is None
    assert _declared_names(b"package p\n\nvar x = 1; func G() {}\n") is None


def test_header_read_from_bytes():
    from closelint.golang.package import _header_from_bytes

    src = b"""// Copyright
/* block
   comment */
package store // trailing

import "os"
import (
\t"net/http" // why
\tkafka "github.com/segmentio/kafka-go"
\t. "strings"
\t_ "embed"
\tr `regexp`
)

import "C"

func F() {}
"""
    assert _header_from_bytes(src) == ("store", [(None, "os"), (None, "net/http"),
                                                 ("kafka", "github.com/segmentio/kafka-go"), (".", "strings"),
                                                 ("_", "embed"), ("r", "regexp"), (None, "C")])
    assert _header_from_bytes(b"package p; import \"os\"; func F() {}") == ("p", [(None, "os")])
    assert _header_from_bytes(b"package p\nimport (\n\t\"os\"\n") is None  # cut short: the tree decides
    assert _header_from_bytes(b"\xef\xbb\xbfpackage p\n") is None


def test_plain_header_read_in_one_pass_agrees_with_the_tokens():
    from closelint.golang import package

    plain = b"""// Copyright

//go:build linux

package store

import "os"
import pq "github.com/lib/pq"
import (
\t"net/http"

\tkafka "github.com/segmentio/kafka-go"
\t. "strings"
\t_ "embed"
)

// F does things.
func F() {}
"""
    want = ("store", [(None, "os"), ("pq", "github.com/lib/pq"), (None, "net/http"), ("kafka", "github.com/segmentio/kafka-go"),
                      (".", "strings"), ("_", "embed")])
    assert package._plain_header(plain) == want
    assert package._header_from_bytes(plain) == want
    # not plain: read token by token (a comment inside a group, a block comment, a raw string, `;`)
    for src in (plain.replace(b'"net/http"', b'"net/http" // why'), plain.replace(b"// F does", b"/* F */ //"),
                plain.replace(b'"embed"', b"`embed`"), b'package p; import "os"; func F() {}',
                b'package p\nimport "os"\n', b'// c\n//x package funcx\nfunc f() {}\n',
                b'package p\nimport (;)\nvar x = 1\n'):
        assert package._plain_header(src) is None, src
    assert package._header_from_bytes(plain.replace(b'"net/http"', b'"net/http" // why')) == want
