"""The Go package index, built once per package folder and shared by every Go rule.

Methods and helpers live in sibling files, so a rule that looks into `go r.loop(peer)` or into a
helper that closes its parameter needs the whole folder: its imports (with aliases), functions,
methods by receiver type, struct fields and package-level variables. Types are kept as source text
with the package qualifier replaced by the full import path (`*database/sql.DB`), so a catalog entry
written with import paths matches whatever alias a file uses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from closelint.source import SourceFile
from closelint.treeutil import text, word_offsets

_VERSION_ELEM = re.compile(r"^v\d+$")
_QUALIFIED = re.compile(r"\b([A-Za-z_]\w*)\.([A-Z]\w*)")



# Import paths whose package name the conventions below cannot derive.
KNOWN_PACKAGE_NAMES = {
    "github.com/json-iterator/go": "jsoniter",
    "github.com/rabbitmq/amqp091-go": "amqp",
    "github.com/ethereum/go-ethereum": "ethereum",
    "gopkg.in/DataDog/dd-trace-go.v1/ddtrace/tracer": "tracer",
}


@lru_cache(maxsize=4096)  # asked for every import of every file read: the same few paths
def default_package_name(import_path: str) -> str:
    """The name a Go import is used under when it has no alias.

    Go allows a package name unrelated to its path; this follows the conventions module authors use
    (`kafka-go` -> kafka, `nats.go` -> nats, `pgx/v5` -> pgx, `yaml.v3` -> yaml).
    """
    if import_path in KNOWN_PACKAGE_NAMES:
        return KNOWN_PACKAGE_NAMES[import_path]
    elems = [e for e in import_path.split("/") if e]
    if not elems:
        return ""
    last = elems[-1]
    if last == "go" and len(elems) > 1:  # github.com/json-iterator/go -> jsoniter
        return elems[-2].replace("-", "").replace(".", "")
    if _VERSION_ELEM.match(last) and len(elems) > 1:
        last = elems[-2]
    last = re.sub(r"\.v\d+$", "", last)
    last = re.sub(r"\.go$", "", last)
    if last.startswith("go-"):
        last = last[3:]
    if last.endswith("-go"):
        last = last[:-3]
    return last.replace("-", "_").replace(".", "_")


class GoFile:
    """One file of the package. Its header (package name, imports) is read from the tree on first
    use, so a file no rule looks at is never parsed."""

    def __init__(self, source: SourceFile, rank: int = 0):
        self.source = source
        self.rank = rank  # the package's own files before its external test package's
        self._package: str | None = None
        self._imports: dict[str, str] = {}  # local name -> import path
        self._dot_imports: list[str] = []
        self._declared_names = _UNREAD
        self._qualified: dict[str, str] = {}  # type text -> qualified (see qualify)

    def __repr__(self):
        return f"GoFile({self.source.path})"

    @property
    def declared_names(self) -> frozenset[bytes] | None:
        """The package-level names the file declares, read from its bytes without a tree (gofmt layout:
        see _declared_names); None when the file is not in that layout."""
        if self._declared_names is _UNREAD:
            self._declared_names = _declared_names(self.source.data)
        return self._declared_names

    def may_declare(self, name: bytes) -> bool:
        names = self.declared_names
        if names is None:
            return next(word_offsets(self.source.data, name), None) is not None
        return name in names

    def _read_header(self) -> None:
        if self._package is not None:
            return
        header = _header_from_bytes(self.source.data)
        if header is not None:  # the common case: no tree needed to know a file's imports
            self._package, specs = header
            for name, ipath in specs:
                self._add_import(name, ipath)
            return
        self._package = ""
        for child in self.source.root.named_children:
            if child.type == "package_clause":
                self._package = text(child.named_children[0]) if child.named_children else ""
            elif child.type == "import_declaration":
                for spec in specs_of(child, "import_spec"):
                    self._import(spec)

    def _import(self, spec) -> None:
        path_node = spec.child_by_field_name("path")
        if path_node is None:
            return
        name_node = spec.child_by_field_name("name")
        self._add_import(text(name_node) if name_node is not None else None, text(path_node).strip('"`'))

    def _add_import(self, name: str | None, ipath: str) -> None:
        """name: the alias written (None when there is none, "." or "_")."""
        if name is None:
            self._imports[default_package_name(ipath)] = ipath
        elif name == ".":
            self._dot_imports.append(ipath)
        elif name != "_":
            self._imports[name] = ipath

    @property
    def package(self) -> str:
        self._read_header()
        return self._package

    @property
    def imports(self) -> dict[str, str]:
        self._read_header()
        return self._imports

    @property
    def dot_imports(self) -> list[str]:
        self._read_header()
        return self._dot_imports

    @property
    def path(self):
        return self.source.path

    def import_path(self, name: str) -> str | None:
        return self.imports.get(name)

    def qualify(self, type_node_or_text) -> str:
        """Type text with package qualifiers replaced by import paths: `*sql.DB` -> `*database/sql.DB`."""
        t = type_node_or_text if isinstance(type_node_or_text, str) else text(type_node_or_text)
        if "." not in t:  # most types (int, error, *T, []byte) name no package
            return t
        done = self._qualified.get(t)
        if done is None:  # a file writes the same few qualified types over and over
            imports = self.imports
            done = self._qualified[t] = _QUALIFIED.sub(
                lambda m: f"{imports[m.group(1)]}.{m.group(2)}" if m.group(1) in imports else m.group(0), t)
        return done


@dataclass
class Param:
    name: str  # "" for unnamed, "_" for blank
    type: str  # qualified type text
    node: object = None


class Function:
    """A function or method declaration of the package (function literals are nodes, not Functions).

    Parameters and results are read from the tree on first use: most functions of a package are
    never looked at, and qualifying every parameter type of every file is measurable."""

    def __init__(self, name: str, node, file: GoFile, receiver: str = "", receiver_name: str = "",
                 params: list[Param] | None = None, results: list[Param] | None = None):
        self.name = name
        self.node = node
        self.file = file
        self.receiver = receiver  # base receiver type name, without pointer or type arguments
        self.receiver_name = receiver_name
        self._params = params
        self._results = results

    def __repr__(self):
        return f"Function({self.qualname})"

    @property
    def params(self) -> list[Param]:
        if self._params is None:
            self._params = params_of(self.node.child_by_field_name("parameters"), self.file)
        return self._params

    @property
    def results(self) -> list[Param]:
        if self._results is None:
            self._results = params_of(self.node.child_by_field_name("result"), self.file)
        return self._results

    @property
    def body(self):
        return self.node.child_by_field_name("body")

    @property
    def qualname(self) -> str:
        return f"{self.receiver}.{self.name}" if self.receiver else self.name


def params_of(parameter_list, gofile: GoFile) -> list[Param]:
    out = []
    if parameter_list is None:
        return out
    if parameter_list.type != "parameter_list":  # a single unnamed result type
        return [Param("", gofile.qualify(parameter_list), parameter_list)]
    for decl in parameter_list.named_children:
        if decl.type not in ("parameter_declaration", "variadic_parameter_declaration"):
            continue
        type_node = decl.child_by_field_name("type")
        type_text = gofile.qualify(type_node) if type_node is not None else ""
        if decl.type == "variadic_parameter_declaration":
            type_text = "..." + type_text
        names = decl.children_by_field_name("name")
        if not names:
            out.append(Param("", type_text, decl))
        for n in names:
            out.append(Param(text(n), type_text, n))
    return out


def receiver_of(method_node, gofile: GoFile) -> tuple[str, str]:
    """(base receiver type name, receiver variable name) of a method declaration."""
    decl = method_node.child_by_field_name("receiver")
    if decl is None or not decl.named_children:
        return "", ""
    kids = decl.named_children
    t = kids[0].child_by_field_name("type")
    recv_type = _base_type_name(t) if t is not None else ""
    # the receiver's name, as params_of reads it (without qualifying its type: every method of every
    # indexed file comes here, and the type text is not needed)
    first = next((d for d in kids if d.type in ("parameter_declaration", "variadic_parameter_declaration")), None)
    names = first.children_by_field_name("name") if first is not None else []
    return recv_type, (text(names[0]) if names else "")


def _base_type_name(type_node) -> str:
    n = type_node
    while n is not None and n.type in ("pointer_type", "generic_type", "parenthesized_type"):
        n = n.child_by_field_name("type") or (n.named_children[0] if n.named_children else None)
    return text(n) if n is not None else ""


# Go's predeclared identifiers: looking one up must not index every file that uses it.
_PREDECLARED = frozenset(
    "append cap clear close complex copy delete imag len make max min new panic print println real "
    "recover bool byte comparable complex64 complex128 error float32 float64 int int8 int16 int32 "
    "int64 rune string uint uint8 uint16 uint32 uint64 uintptr any true false iota nil _".split())


class _LazyTable(Mapping):
    """A table of the package index that indexes files only as lookups need them.

    A lookup of `name` first indexes every not-yet-indexed file whose bytes hold `name` as a word (a
    declaration of it must), so the answer is the same as with a full index; iterating indexes all."""

    def __init__(self, pkg: "GoPackage", word_of=lambda key: key):
        self._pkg = pkg
        self._word_of = word_of
        self.data: dict = {}

    def _need(self, key) -> None:
        word = self._word_of(key)
        if isinstance(word, str):
            self._pkg._index_files_with(word)

    def __getitem__(self, key):
        self._need(key)
        return self.data[key]

    def get(self, key, default=None):
        self._need(key)
        return self.data.get(key, default)

    def __contains__(self, key):
        self._need(key)
        return key in self.data

    def __iter__(self):
        self._pkg._index_all()
        return iter(self.data)

    def __len__(self):
        self._pkg._index_all()
        return len(self.data)


class GoPackage:
    """Every .go file of one folder, indexed lazily, once.

    Tables: functions, methods[(receiver type, name)], methods_by_name, struct_fields, type_defs,
    globals, consts. A file is parsed and indexed only when a lookup needs a name it holds, so a
    package whose rules look at one file parses that file and the siblings declaring what it uses.
    Where the same name is declared twice (the folder's external test package), the package's own
    declaration wins, whatever order files were indexed in."""

    def __init__(self, sources: list[SourceFile]):
        ranked = sorted(sources, key=_is_external_test)  # stable: the package's own files first
        self.files: list[GoFile] = [GoFile(src, rank=i) for i, src in enumerate(ranked)]
        self._pending: dict[int, GoFile] = {id(gf): gf for gf in self.files}
        self._words_done: set[str] = set()
        self.functions = _LazyTable(self)
        self.methods = _LazyTable(self, word_of=lambda key: key[1] if isinstance(key, tuple) else None)
        self.methods_by_name = _LazyTable(self)
        self.struct_fields = _LazyTable(self)  # type name -> field -> qualified type
        self.type_defs = _LazyTable(self)  # type name -> qualified underlying type text
        self.globals = _LazyTable(self)  # name -> (file, var_spec node)
        self.consts = _LazyTable(self)  # name -> (file, const_spec node)
        self._functions_by_node: dict[int, Function] = {}
        self._ranks: dict[tuple, int] = {}

    def _index_files_with(self, word: str) -> None:
        if word in self._words_done or word in _PREDECLARED or not self._pending:
            return
        self._words_done.add(word)
        needle = word.encode()
        for gf in list(self._pending.values()):
            if needle in gf.source.data and gf.may_declare(needle):
                self._index(gf)

    def _index_all(self) -> None:
        for gf in list(self._pending.values()):
            self._index(gf)

    def function_at(self, node) -> Function | None:
        """The Function of a function or method declaration node of one of the package's files."""
        hit = self._functions_by_node.get(node.id)
        if hit is None and node.parent is not None:  # a declaration's parent is its file's root
            root_id = node.parent.id
            for gf in self.files:
                if gf.source._tree is not None and gf.source.root.id == root_id:
                    self._index(gf)
                    break
            hit = self._functions_by_node.get(node.id)
        return hit

    def _put(self, table: dict, key, value, rank: int) -> None:
        """Keep the declaration of the best-ranked file (the package's own before its tests')."""
        slot = (id(table), key)
        if key not in table or self._ranks[slot] > rank:
            table[key] = value
            self._ranks[slot] = rank

    def _index(self, gf: GoFile):
        """Index one file from its top-level declarations only (a few dozen nodes, no tree walk)."""
        if self._pending.pop(id(gf), None) is None:
            return
        rank = gf.rank
        for child in gf.source.root.named_children:
            t = child.type
            if t == "function_declaration":
                fn = Function(text(child.child_by_field_name("name")), child, gf)
                self._functions_by_node[child.id] = fn
                self._put(self.functions.data, fn.name, fn, rank)
            elif t == "method_declaration":
                recv_type, recv_name = receiver_of(child, gf)
                fn = Function(text(child.child_by_field_name("name")), child, gf,
                              receiver=recv_type, receiver_name=recv_name)
                self._functions_by_node[child.id] = fn
                self._put(self.methods.data, (recv_type, fn.name), fn, rank)
                same = self.methods_by_name.data.setdefault(fn.name, [])
                same.append(fn)
                same.sort(key=lambda f: f.file.rank)
            elif t == "type_declaration":
                for spec in child.named_children:
                    if spec.type not in ("type_spec", "type_alias"):
                        continue
                    name_node, tnode = spec.child_by_field_name("name"), spec.child_by_field_name("type")
                    if name_node is None or tnode is None:
                        continue
                    name = text(name_node)
                    self._put(self.type_defs.data, name, gf.qualify(tnode), rank)
                    if tnode.type == "struct_type":
                        self._put(self.struct_fields.data, name, _struct_fields(tnode, gf), rank)
            elif t in ("var_declaration", "const_declaration"):
                table = self.globals if t == "var_declaration" else self.consts
                for spec in specs_of(child, "var_spec" if t == "var_declaration" else "const_spec"):
                    for n in spec.children_by_field_name("name"):
                        self._put(table.data, text(n), (gf, spec), rank)

    def file_of(self, source: SourceFile) -> GoFile | None:
        for gf in self.files:
            if gf.source is source:
                return gf
        return None

    def method(self, receiver: str, name: str) -> Function | None:
        """A method by receiver type name; with an unknown receiver, by a name unique in the package."""
        if receiver:
            return self.methods.get((receiver.lstrip("*"), name))
        candidates = self.methods_by_name.get(name, [])
        return candidates[0] if len(candidates) == 1 else None

    def field_type(self, struct: str, field_name: str) -> str | None:
        return self.struct_fields.get(struct.lstrip("*"), {}).get(field_name)


# The tokens of a file's header: comments, strings, words, and the punctuation of import lists.
_HEADER_TOKEN = re.compile(rb'\s+|//[^\n]*|/\*.*?\*/|"(?:[^"\\\n]|\\.)*"|`[^`]*`|[A-Za-z_\x80-\xff][\w\x80-\xff]*|[.();]',
                           re.S)


# The header as gofmt writes it: `package p`, then blank lines, line comments, import lines and import
# groups without comments inside, then a declaration. Read a few items at a time; anything else (a
# block comment, a comment in a group, a raw string) is read token by token below.
_PLAIN_PACKAGE = re.compile(rb"(?:\s+|//[^\n]*+)*package[ \t]+([A-Za-z_]\w*)[ \t]*(?://[^\n]*)?\n")
_SPEC = rb'(?:([A-Za-z_]\w*|\.)[ \t]+)?"([^"\\\n]*)"'  # (alias) "path"
_PLAIN_SPEC = re.compile(_SPEC)
_PLAIN_ITEM = re.compile(
    rb'\s+|//[^\n]*'
    rb'|import[ \t]*\((\s*(?:(?:(?:[A-Za-z_]\w*|\.)[ \t]+)?"[^"\\\n]*"[\s;]*)*)\)'  # a group: _SPECs, `;` after each
    rb'|import[ \t]+' + _SPEC)
_PLAIN_DECLARATION = re.compile(rb"(?:func|type|var|const)\b")


def _plain_header(data: bytes):
    package = _PLAIN_PACKAGE.match(data)
    if package is None:
        return None
    pos, specs = package.end(), []
    item = _PLAIN_ITEM.match(data, pos)
    while item is not None:
        if item.group(1) is not None:  # an import group: only specs, blanks and `;` inside
            specs += _PLAIN_SPEC.findall(item.group(1))
        elif item.group(3) is not None:  # one import line
            specs.append((item.group(2) or b"", item.group(3)))
        pos = item.end()
        item = _PLAIN_ITEM.match(data, pos)
    if _PLAIN_DECLARATION.match(data, pos) is None:
        return None
    return package.group(1).decode(), [(alias.decode() if alias else None, path.decode("utf-8", "replace"))
                                       for alias, path in specs]


def _header_from_bytes(data: bytes):
    """(package name, [(import name or None, import path)]) read from the tokens of the package
    clause and the import declarations; None when they are not plainly that (a syntax error, an
    unexpected token), and the tree decides."""
    plain = _plain_header(data)
    if plain is not None:
        return plain
    pos, n = 0, len(data)

    def token():
        nonlocal pos
        while pos < n:
            m = _HEADER_TOKEN.match(data, pos)
            if m is None:
                return None
            pos = m.end()
            t = m.group(0)
            if not (t[:1].isspace() or t.startswith((b"//", b"/*"))):
                return t
        return b""

    if token() != b"package":
        return None
    name = token()
    if not name or not _NAME.fullmatch(name):
        return None
    specs: list = []
    t = token()
    while t == b";":
        t = token()
    while t == b"import":
        t = token()
        group = t == b"("
        if group:
            t = token()
        while True:
            if group and t == b")":
                t = token()
                break
            alias = None
            if t == b"." or (t and _NAME.fullmatch(t)):
                alias, t = t.decode("utf-8", "replace"), token()
            if not t or t[:1] not in (b'"', b"`"):
                return None
            specs.append((alias, t[1:-1].decode("utf-8", "replace")))
            t = token()
            while t == b";":
                t = token()
            if not group:
                break
        while t == b";":
            t = token()
    if t is None:
        return None
    return name.decode("utf-8", "replace"), specs


_UNREAD = object()
_DECLARATION_LINE = re.compile(rb"\n(func|type|var|const)[ \t(]")
_IDENT = rb"[A-Za-z_\x80-\xff][\w\x80-\xff]*"
_NAME = re.compile(_IDENT)
_NAME_LIST = re.compile(_IDENT + rb"(?:[ \t]*,[ \t]*" + _IDENT + rb")*")


def _declared_names(data: bytes) -> frozenset[bytes] | None:
    """Names declared at package level, in gofmt layout: a declaration starts a line with func,
    type, var or const; a group's specs start their lines with one tab and end at the `)` that starts
    a line. `func (r *T) Name`, `func Name[T any]`, `var a, b = ...`, `const (\n\tA = iota\n\tB\n)`.
    None when a declaration may not start its line: the file is not in that layout."""
    if _outside_gofmt_layout(data):
        return None
    text = b"\n" + data
    names: set[bytes] = set()
    m = _DECLARATION_LINE.search(text)
    while m is not None:
        kw, j = m.group(1), m.end(1)
        end = text.find(b"\n", j)
        end = len(text) if end < 0 else end
        rest = text[j:end].lstrip()
        if kw == b"func":
            if rest.startswith(b"("):  # a method: the name follows the receiver
                rest = rest[_closing_paren(rest) + 1:].lstrip()
            name = _NAME.match(rest)
            if name:
                names.add(name.group(0))
        elif rest.startswith(b"("):  # a group: each spec starts a line with one tab
            close = text.find(b"\n)", j)
            close = len(text) if close < 0 else close
            _add_names(names, rest[1:].lstrip(), tuple_names=kw != b"type")
            for line in text[end + 1:close].split(b"\n"):
                if line.startswith(b"\t") and not line.startswith(b"\t\t"):
                    _add_names(names, line[1:], tuple_names=kw != b"type")
            end = close
        else:
            _add_names(names, rest, tuple_names=kw != b"type")
        m = _DECLARATION_LINE.search(text, end)
    return frozenset(names)


def _add_names(names: set, spec: bytes, tuple_names: bool) -> None:
    m = (_NAME_LIST if tuple_names else _NAME).match(spec)
    if m:
        names.update(n.strip() for n in m.group(0).split(b","))


def _closing_paren(s: bytes) -> int:
    depth = 0
    for k, c in enumerate(s):
        if c == 40:  # (
            depth += 1
        elif c == 41:  # )
            depth -= 1
            if depth == 0:
                return k
    return len(s)


_JOINED_DECLARATION = re.compile(rb";[ \t]*(?:func|type|var|const)\b")


def _outside_gofmt_layout(data: bytes) -> bool:
    """A declaration that may not start its line: `func Name` or `func (r T)` after indentation (a
    literal is written `func(`; a non-gofmt literal `func (x int)` only makes this say yes, which is
    safe), or a declaration after a `;`."""
    i = data.find(b"func ")
    while i >= 0:
        line_start = data.rfind(b"\n", 0, i) + 1
        if line_start < i and not data[line_start:i].strip():
            return True
        i = data.find(b"func ", i + 5)
    return b";" in data and _JOINED_DECLARATION.search(data) is not None


def _is_external_test(src: SourceFile) -> bool:
    """A file of the folder's external test package: its package clause ends in _test."""
    head = src.data[:4096]
    i = head.find(b"\npackage ")
    if i < 0 and head.startswith(b"package "):
        i = -1
    elif i < 0:
        return False
    line = head[i + 1:].split(b"\n", 1)[0]
    return line.rstrip().endswith(b"_test")


def specs_of(decl, kind: str) -> list:
    """The specs of a declaration, also inside a parenthesized list (`var ( a = 1; b int )`)."""
    out = []
    for c in decl.named_children:
        if c.type == kind:
            out.append(c)
        elif c.type.endswith("_list"):
            out.extend(x for x in c.named_children if x.type == kind)
    return out


def _struct_fields(struct_node, gf: GoFile) -> dict[str, str]:
    fields = {}
    body = next((c for c in struct_node.named_children if c.type == "field_declaration_list"), None)
    if body is None:
        return fields
    for decl in body.named_children:
        if decl.type != "field_declaration":
            continue
        type_node = decl.child_by_field_name("type")
        if type_node is None:
            continue
        qualified = gf.qualify(type_node)
        names = decl.children_by_field_name("name")
        if names:
            for n in names:
                fields[text(n)] = qualified
        else:  # embedded field: named after its type
            fields[_base_type_name(type_node).split(".")[-1]] = qualified
    return fields


# Parameter types by which a function is recognised as a request handler, per framework.
HANDLER_PARAM_TYPES = {
    "*github.com/gin-gonic/gin.Context": "gin",
    "github.com/labstack/echo/v4.Context": "echo",
    "github.com/labstack/echo.Context": "echo",
    "*github.com/labstack/echo/v5.Context": "echo",
    "github.com/labstack/echo/v5.Context": "echo",
    "*github.com/gofiber/fiber/v2.Ctx": "fiber",
    "github.com/gofiber/fiber/v3.Ctx": "fiber",
}
_CADDY_HANDLER = "github.com/caddyserver/caddy/v2/modules/caddyhttp.Handler"


def handler_framework(params: list[Param], name: str = "", is_method: bool = False) -> str | None:
    """'net/http', 'caddy', 'gin', 'echo' or 'fiber' when a function has a request handler's shape.

    net/http: (http.ResponseWriter, *http.Request) as the first two parameters, in that order
    (`addVars(repl, req, w)` is not a handler); a Caddy middleware's ServeHTTP also takes the next
    handler; httprouter-style handlers take more after (w, r). Frameworks: their context type as the
    only parameter."""
    types = [p.type for p in params]
    if types[:2] == ["net/http.ResponseWriter", "*net/http.Request"]:
        if is_method and name == "ServeHTTP" and types[2:] == [_CADDY_HANDLER]:
            return "caddy"
        return "net/http"  # further parameters too: httprouter's (w, r, ps) handlers
    if len(types) == 1:
        return HANDLER_PARAM_TYPES.get(types[0])
    return None
