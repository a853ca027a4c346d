"""Rust facts shared by the Rust rules (CL202 blocking-task, CL203 leaked-allocation), computed once
per unit and kept in ctx.shared.

What the rules ask of a folder of .rs files:
  - its functions: name, impl type, parameters, attributes, async, test, start-up (`main`);
  - each file's `use` map, to read `task::spawn` as `tokio::task::spawn`;
  - the spawn calls: which body the task runs (an async block, a closure, or a function of the unit
    reached through a call), and what becomes of its JoinHandle;
  - where a node sits (`Where`): test code, a one-off initialiser (`static`, `OnceLock::get_or_init`,
    `Lazy::new`), the enclosing loops and whether they repeat per connection or item, a spawned task's
    body, a function that runs per request or connection.

The vocabulary (spawn functions, per-request words, handler types, ...) is data from the rules' TOML
files; the facts are cached per vocabulary, so two rules with the same defaults share one
computation. Nothing here recurses on the tree's depth.
"""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass, field
from pathlib import Path

from closelint.observed import Observer
from closelint.treeutil import paths_at, text, walk, word_spans

KEY = "closelint.rust.facts"

LOOPS = ("loop_expression", "while_expression", "for_expression")
SPAWN_METHODS = ("spawn", "spawn_local", "spawn_blocking")  # `rt.spawn(..)`, `Builder::new().spawn(..)`
# Nodes whose inside is a different body: `return`, `?` and `break` there do not leave ours.
BODY_BOUNDARIES = ("closure_expression", "async_block", "function_item", "const_item", "static_item",
                   "impl_item", "trait_item", "mod_item")
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_ACRONYM = re.compile(r"([A-Z]+)([A-Z][a-z])")
_WS = re.compile(r"\s+")
_GENERIC_ARGS = re.compile(r"::<[^()]*?>")


# How far up the rules look from a node. tree-sitter finds a node's parent by walking down from the
# root, so a walk up from depth d costs d*d: past this many levels (generated or pathological code)
# the facts say "too deep" and the rules stay silent instead of taking minutes.
MAX_UP = 400


class TooDeep(Exception):
    """A node sits more than MAX_UP levels under what a rule looks for."""


def up(node, limit: int = MAX_UP):
    """node's ancestors, innermost first; raises TooDeep after `limit` of them."""
    n = node.parent
    i = 0
    while n is not None:
        yield n
        i += 1
        if i >= limit:
            raise TooDeep
        n = n.parent


# ------------------------------------------------------------------------------------ vocabulary

@dataclass(frozen=True)
class Vocab:
    """The words the facts are computed with (from a rule's [options] and catalog tables)."""

    spawns: tuple = ()                # ((path, kind), ...): "tokio::spawn" -> "task"
    spawn_receivers: tuple = ()       # `rt.spawn(...)`: receiver names that are runtimes/handles
    handle_wrappers: tuple = ()       # `.instrument(span)`, `Box::pin(..)`: look through to the future
    per_request_words: tuple = ()     # head nouns of a parameter or closure parameter: peer, conn, ...
    loop_words: tuple = ()            # ... of a `for`/`while let` variable or collection: peer, stream
    handler_types: tuple = ()         # parameter types that make an async fn a request handler
    handler_generic_types: tuple = () # ... only with type arguments (`Path<u32>`, `State<S>`)
    handler_attributes: tuple = ()    # `#[get("/")]`
    not_per_request_types: tuple = () # `socket: UdpSocket` serves every peer: not per connection
    item_sources: tuple = ()          # methods whose loop runs per item: accept, recv, next, ...
    startup_functions: tuple = ()     # `main`
    startup_attributes: tuple = ()    # `#[tokio::main]`
    once_calls: tuple = ()            # `get_or_init`, `Lazy::new`: closures run once
    test_attributes: tuple = ()       # `#[test]`, `#[tokio::test]`, `#[rstest]`

    def spawn_names(self) -> tuple:
        """The last name segments a spawn call can have: the catalog's and the runtime methods."""
        return tuple(sorted({p.rsplit("::", 1)[-1] for p, _ in self.spawns} | set(SPAWN_METHODS)))

    @classmethod
    def from_ctx(cls, ctx) -> "Vocab":
        o = ctx.options
        return cls(
            spawns=tuple((r["path"], r.get("kind", "task")) for r in _spawn_rows(ctx)),
            spawn_receivers=tuple(o.get("spawn-receivers", ())),
            handle_wrappers=tuple(o.get("future-wrappers", ())),
            per_request_words=tuple(o.get("per-request-words", ())),
            loop_words=tuple(o.get("per-item-loop-words", ())),
            handler_types=tuple(o.get("handler-types", ())),
            handler_generic_types=tuple(o.get("handler-generic-types", ())),
            handler_attributes=tuple(o.get("handler-attributes", ())),
            not_per_request_types=tuple(o.get("not-per-request-types", ())),
            item_sources=tuple(o.get("item-sources", ())),
            startup_functions=tuple(o.get("startup-functions", ())),
            startup_attributes=tuple(o.get("startup-attributes", ())),
            once_calls=tuple(o.get("once-calls", ())),
            test_attributes=tuple(o.get("test-attributes", ())),
        )


def _spawn_rows(ctx) -> list:
    """The spawn catalog: the rule's own [[spawns]] table, else CL202's (with the user's rows), so
    that CL203 knows every spawn function CL202 knows."""
    own = ctx.catalogs.get("spawns")
    if own:
        return list(own)
    other = getattr(ctx, "catalogs_of", None)
    return list(other("CL202").get("spawns", ())) if other is not None else []


def facts(ctx, vocab: Vocab | None = None) -> "UnitFacts":
    """The unit's facts for this vocabulary, computed on first use and shared by every rule."""
    vocab = vocab or Vocab.from_ctx(ctx)
    key = (KEY, vocab)
    got = ctx.shared.get(key)
    if got is None:
        got = ctx.shared[key] = UnitFacts([f for f in ctx.files if f.lang == "rust"], vocab, ctx.read, ctx.fs)
    return got


_CFG_TEST_MOD = re.compile(rb"#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;")


def _declared_as_test(folder: Path, read) -> bool:
    """The folder is a module its parent declares `#[cfg(test)] mod <folder>;` (src/proxy/tests/mod.rs
    under `#[cfg(test)] mod tests;` in src/proxy/mod.rs or src/proxy.rs)."""
    if read is None:
        return False
    parent = folder.parent
    for cand in (parent / "mod.rs", parent / "lib.rs", parent / "main.rs", parent.with_suffix(".rs")):
        src = read(cand)  # None when there is no such file
        if src is not None and any(m.group(1).decode() == folder.name for m in _CFG_TEST_MOD.finditer(src.data)):
            return True
    return False


# ----------------------------------------------------------------------------------- small helpers

def words(name: str) -> list[str]:
    """`peer_conn` -> [peer, conn]; `TcpStream` -> [tcp, stream]; `HTTPRequest` -> [http, request]."""
    name = _ACRONYM.sub(r"\1_\2", _CAMEL.sub(r"\1_\2", name))
    return [w for w in name.lower().split("_") if w]


def compact(node) -> str:
    """A node's text without whitespace or turbofish arguments: `tokio :: spawn::<F>` -> tokio::spawn."""
    s = _WS.sub("", text(node))
    s = _GENERIC_ARGS.sub("", s)
    return s[2:] if s.startswith("::") else s


def head_noun(name: str, nouns, plural: bool = False) -> str | None:
    """The per-request noun a name ends with (`tcp_stream` -> stream, `peer_id` -> peer), or None."""
    toks = words(name)
    if not toks:
        return None
    cands = [toks[-1]]
    if toks[-1] == "id" and len(toks) >= 2:
        cands.append(toks[-2])
    for c in cands:
        if c in nouns:
            return c
        if plural and c.endswith("s") and c[:-1] in nouns:
            return c[:-1]
    return None


def callee_name(call) -> str:
    """The last name segment of a call's function (`spawn` for tokio::spawn, `abort` for h.abort())."""
    fn = call.child_by_field_name("function")
    if fn is None:
        return ""
    if fn.type == "generic_function":
        fn = fn.child_by_field_name("function")
    if fn.type == "identifier":
        return text(fn)
    if fn.type == "scoped_identifier":
        return text(fn.child_by_field_name("name"))
    if fn.type == "field_expression":
        return text(fn.child_by_field_name("field"))
    return ""


def macro_name(mac) -> str:
    m = mac.child_by_field_name("macro")
    if m is None:
        return ""
    if m.type == "scoped_identifier":
        return text(m.child_by_field_name("name"))
    return text(m)


def strip_parens(node):
    while node is not None and node.type == "parenthesized_expression" and node.named_child_count:
        node = node.named_children[0]
    return node


def identifiers_in_pattern(pat) -> list[str]:
    out = []
    if pat is None:
        return out
    for n in walk(pat):
        if n.type == "identifier" and n.parent is not None and n.parent.type != "scoped_identifier":
            if n.parent.type == "tuple_struct_pattern" and n.parent.child_by_field_name("type") == n:
                continue  # `Some` in `Some(x)`
            out.append(text(n))
        elif n.type == "shorthand_field_identifier":
            out.append(text(n))
    return out


def leading_attributes(item) -> list:
    """The `#[...]` attribute items written just before an item (comments skipped)."""
    out = []
    prev = item.prev_sibling
    while prev is not None and prev.type in ("attribute_item", "line_comment", "block_comment"):
        if prev.type == "attribute_item":
            out.append(prev)
        prev = prev.prev_sibling
    return out


def _attribute_path(attr_item) -> tuple[str, object]:
    attr = next((c for c in attr_item.named_children if c.type == "attribute"), None)
    if attr is None or not attr.named_children:
        return "", None
    path = attr.named_children[0]
    args = next((c for c in attr.named_children if c.type == "token_tree"), None)
    return compact(path), args


def _is_cfg_test(path: str, args) -> bool:
    if path != "cfg" or args is None:
        return False
    toks = [text(n) for n in walk(args) if n.type == "identifier"]
    return "test" in toks and "not" not in toks


def type_head(type_node, unwrap=("Box", "Pin", "Option")) -> tuple[str, bool]:
    """(last name segment of a parameter's type, whether it has type arguments), through `&`, Box."""
    t = type_node
    while t is not None:
        if t.type == "reference_type":
            t = t.child_by_field_name("type")
            continue
        if t.type == "generic_type":
            base = t.child_by_field_name("type")
            name = compact(base).rsplit("::", 1)[-1]
            args = t.child_by_field_name("type_arguments")
            if name in unwrap and args is not None and args.named_child_count:
                t = args.named_children[0]
                continue
            return name, True
        if t.type in ("type_identifier", "scoped_type_identifier"):
            return compact(t).rsplit("::", 1)[-1], False
        return "", False
    return "", False


# ----------------------------------------------------------------------------------------- model

class RustFile:
    """One .rs file of the unit. Its `use` imports are read from the tree on first use."""

    def __init__(self, source, is_test_file: bool = False):
        self.source = source
        self.is_test_file = is_test_file
        self._imports: dict | None = None

    def __repr__(self):
        return f"RustFile({self.source.path})"

    @property
    def imports(self) -> dict:
        """local name -> full path"""
        if self._imports is None:
            self._imports = _imports(self.source.root)
        return self._imports

    def resolve_path(self, path: str) -> str:
        """`task::spawn` -> `tokio::task::spawn` when `use tokio::task;` is in the file."""
        first, sep, rest = path.partition("::")
        full = self.imports.get(first)
        if full is None or full == first:
            return path
        return full + (sep + rest if sep else "")


@dataclass(eq=False)
class Fn:
    file: RustFile
    node: object
    name: str
    impl_type: str | None
    is_async: bool
    params: list            # [(name, type node or None, pattern node)], `self` excluded
    has_self: bool
    attrs: list             # [(path, args node)]
    is_test: bool
    is_startup: bool

    @property
    def body(self):
        return self.node.child_by_field_name("body")

    @property
    def display(self) -> str:
        return f"{self.impl_type}::{self.name}" if self.impl_type else self.name


@dataclass(eq=False)
class Spawn:
    file: RustFile
    call: object
    path: str               # what was called, resolved: tokio::spawn, rt.spawn, thread::Builder...spawn
    kind: str               # "task" | "thread"
    arg: object | None      # the future or closure handed to the spawn
    fn: Fn | None
    fate: str               # "dropped" | "kept" | "awaited" | "aborted" | "returned"


@dataclass
class LoopInfo:
    node: object
    kind: str               # "per-item" | "unbounded" | "collection" | "bounded" | "dispatch"
    reason: str = ""        # "accept loop", "`for peer in peers`"
    once: bool = False      # the loop leaves right after the node (a retry loop): it does not repeat it
    noun: str = "iteration"  # what one turn stands for: connection, peer, request, item


@dataclass
class Where:
    """Where a node sits, from its ancestors up to its function item."""

    fn: Fn | None = None
    test: bool = False
    once: str = ""                          # "static initialiser", "`get_or_init` closure", ...
    loops: list = field(default_factory=list)   # LoopInfo, innermost first (across closures/tasks)
    per: str = ""                           # "per connection (parameter `socket`)"
    task: Spawn | None = None               # innermost spawned body holding the node
    closures: list = field(default_factory=list)

    @property
    def startup(self) -> bool:
        return self.fn is not None and self.fn.is_startup

    def repeating_loop(self, collections: bool) -> LoopInfo | None:
        """The innermost enclosing loop that repeats the node an unbounded number of times."""
        for lp in self.loops:
            if lp.once:
                continue
            if lp.kind in ("per-item", "unbounded") or (collections and lp.kind == "collection"):
                return lp
        return None


def _items(src) -> dict:
    """The file's functions with their ancestors (innermost first), and its `mod name;` declarations,
    found from the `fn` and `mod` keywords of its text (a query would visit every node). A function
    nested more than MAX_UP levels deep is left out, as `up` would."""
    data = src.data
    keywords = heapq.merge(word_spans(data, b"fn"), word_spans(data, b"mod"))
    fns, mods = [], []
    for path in paths_at(src.root, keywords):
        if len(path) < 2:
            continue
        kw, item = path[-1], path[-2]
        if kw.type == "fn" and item.type == "function_item" and len(path) - 2 <= MAX_UP:
            fns.append((item, path[-3::-1]))
        elif kw.type == "mod" and item.type == "mod_item" and item.child_by_field_name("body") is None:
            mods.append(item)
    return {"fn": fns, "moddecl": mods}


def _calls_named(src, names, in_macros: bool = False) -> list:
    """The calls whose callee ends in one of names, in document order: `f(..)`, `a::f(..)`,
    `x.f(..)`, `f::<T>(..)`, `a::f::<T>(..)`, `x.f::<T>(..)`; found where the names occur in the
    text. in_macros: also the `f` of an `f(..)` written in a macro's tokens (they are not parsed)."""
    spans = heapq.merge(*[word_spans(src.data, n.encode()) for n in set(names)])
    out = []
    for path in paths_at(src.root, spans):
        i = len(path) - 1
        node = path[i]
        if i < 1 or node.type not in ("identifier", "field_identifier"):
            continue
        parent = path[i - 1]
        if in_macros and parent.type == "token_tree" and node.type == "identifier":
            nxt = node.next_sibling
            if nxt is not None and nxt.type == "token_tree" and nxt.text[:1] == b"(" and \
                    any(a.type == "macro_invocation" for a in path[:i - 1]):
                out.append(node)
            continue
        if (parent.type == "scoped_identifier" and parent.child_by_field_name("name") == node) or (
                parent.type == "field_expression" and parent.child_by_field_name("field") == node):
            node, i = parent, i - 1
            parent = path[i - 1] if i >= 1 else None
        if parent is not None and parent.type == "generic_function" and parent.child_by_field_name("function") == node:
            node, i = parent, i - 1
            parent = path[i - 1] if i >= 1 else None
        if parent is not None and parent.type == "call_expression" and parent.child_by_field_name("function") == node:
            out.append(parent)
    return out


class _FnsByName:
    """name -> [Fn] of the unit, indexing on a lookup the files whose text declares `fn name`."""

    def __init__(self, facts: "UnitFacts"):
        self._facts = facts
        self.data: dict[str, list] = {}

    def get(self, name: str, default=None):
        self._facts._index_files_declaring(name)
        return self.data.get(name, default)

    def __contains__(self, name: str) -> bool:
        self._facts._index_files_declaring(name)
        return name in self.data


# Searched without a leading \b (a pattern that starts with one is tried at every byte of the file,
# ten times slower); the byte before each hit is checked instead (_search_at_word_start).
_TEST_MODULE_HINT = re.compile(rb"mod\s+\w+\s*;")
_INNER_CFG = re.compile(rb"#!\[\s*cfg\s*\([^\]]*\btest\b")  # `#![cfg(test)]`: the whole file is test code


def _may_declare_test_module(data: bytes) -> bool:
    """A `mod name;` declaration and a cfg naming test in the file: only then is its tree read."""
    return b"cfg" in data and b"test" in data and _search_at_word_start(_TEST_MODULE_HINT, data)


def _search_at_word_start(pattern, data: bytes) -> bool:
    """Whether pattern matches where no ASCII word byte comes right before (what a leading \b checks).
    A hit that fails the check is retried one byte on, so overlapping hits are not missed."""
    m = pattern.search(data)
    while m is not None:
        prev = data[m.start() - 1:m.start()]
        if not (prev.isalnum() or prev == b"_"):
            return True
        m = pattern.search(data, m.start() + 1)
    return False


class UnitFacts:
    def __init__(self, sources, vocab: Vocab, read=None, fs: Observer | None = None):
        self.vocab = vocab
        self._sources = list(sources)
        self._read = read
        self._fs = fs or Observer()  # existence checks and listings outside the unit, recorded
        self._crate: tuple | None = None   # (Cargo.toml folder or None, [other .rs files of the crate])
        self._view: "UnitFacts | None" = None  # this unit plus the crate files that call into it
        self._view_files: list = []
        self._view_needles: set = set()
        self._reach: dict = {}
        self.files: list[RustFile] = []
        self.fns: list[Fn] = []
        self._fn_by_node: dict = {}
        self._spawns: list[Spawn] | None = None
        self._spawn_by_arg: dict = {}
        self._calls: dict[str, list] = {}
        self._startup_reach: dict = {}
        self._abort_fields: set | None = None
        self._nouns = frozenset(vocab.per_request_words)
        self._loop_nouns = frozenset(vocab.loop_words)
        self._modules = {src.path.stem for src in sources}
        # Files are parsed and their functions indexed only when a question needs them: a spawn in
        # them, a function of that name, a node inside them.
        self._unindexed: dict = {}  # id(RustFile) -> RustFile
        self._rank: dict = {}  # id(RustFile) -> its position in self.files
        self.by_name = _FnsByName(self)
        test_mods = set()
        self._index: dict = {}
        for src in sources:
            if _may_declare_test_module(src.data):
                for n in self._items(src)["moddecl"]:
                    if any(_is_cfg_test(*_attribute_path(a)) for a in leading_attributes(n)):
                        test_mods.add(text(n.child_by_field_name("name")))
        folder_is_test = bool(sources) and _declared_as_test(sources[0].path.parent, read)
        for src in sources:
            rf = RustFile(src, folder_is_test or _is_test_file(src.path, self._fs.is_file) or src.path.stem in test_mods)
            if not rf.is_test_file and _INNER_CFG.search(src.data) and any(
                    _is_cfg_test(*_attribute_path(n)) for n in src.root.children if n.type == "inner_attribute_item"):
                rf.is_test_file = True
            self._rank[id(rf)] = len(self.files)
            self.files.append(rf)
            self._unindexed[id(rf)] = rf

    def _fn_order(self, fn: "Fn") -> tuple:
        return self._rank[id(fn.file)], fn.node.start_byte

    def _items(self, src) -> dict:
        got = self._index.get(src)
        if got is None:
            got = self._index[src] = _items(src)
        return got

    def _index_file(self, rf: RustFile) -> bool:
        """Index rf's functions unless done; True when this call did it."""
        if self._unindexed.pop(id(rf), None) is None:
            return False
        self._index_functions(rf)
        return True

    def _index_files_declaring(self, name: str) -> None:
        needle = name.encode()
        pattern = None
        for rf in list(self._unindexed.values()):
            if needle in rf.source.data:
                pattern = pattern or re.compile(rb"fn\s+" + re.escape(needle) + rb"\b")
                if _search_at_word_start(pattern, rf.source.data):
                    self._index_file(rf)

    def _fn_at(self, node) -> "Fn | None":
        """The Fn of a function_item node, indexing its file first if needed."""
        fn = self._fn_by_node.get(node)
        if fn is None and self._unindexed:
            for rf in self.files:
                src = rf.source
                if id(rf) in self._unindexed and src._tree is not None and (
                        src.root == node or src.root.child_with_descendant(node) is not None):
                    self._index_file(rf)
                    return self._fn_by_node.get(node)
        return fn

    # -------------------------------------------------------------------------------- functions

    def _index_functions(self, rf: RustFile) -> None:
        for node, chain in self._items(rf.source)["fn"]:
            impl_type = None
            test = rf.is_test_file
            for a in chain:
                if a.type == "impl_item" and impl_type is None:
                    t = a.child_by_field_name("type")
                    impl_type = type_head(t, unwrap=())[0] if t is not None else None
                if a.type in ("mod_item", "impl_item", "function_item", "trait_item") and not test:
                    test = any(_is_cfg_test(*_attribute_path(at)) for at in leading_attributes(a))
            attrs = [_attribute_path(a) for a in leading_attributes(node)]
            names = {p.rsplit("::", 1)[-1] for p, _ in attrs}
            test = test or bool(names & set(self.vocab.test_attributes)) or any(
                _is_cfg_test(p, a) for p, a in attrs)
            name = text(node.child_by_field_name("name"))
            mods = next((c for c in node.children if c.type == "function_modifiers"), None)
            is_async = mods is not None and any(c.type == "async" for c in mods.children)
            params, has_self = [], False
            plist = node.child_by_field_name("parameters")
            for p in (plist.named_children if plist is not None else ()):
                if p.type == "self_parameter":
                    has_self = True
                elif p.type == "parameter":
                    pat = p.child_by_field_name("pattern")
                    ids = identifiers_in_pattern(pat)
                    params.append((ids[0] if ids else text(pat), p.child_by_field_name("type"), pat))
            startup = (name in self.vocab.startup_functions and impl_type is None) or any(
                p in self.vocab.startup_attributes for p, _ in attrs)
            fn = Fn(rf, node, name, impl_type, is_async, params, has_self, attrs, test, startup)
            self.fns.append(fn)
            same = self.by_name.data.setdefault(name, [])
            same.append(fn)
            same.sort(key=self._fn_order)  # as a full index would list them, whatever asked first
            self._fn_by_node[node] = fn

    def fn_of(self, node) -> Fn | None:
        try:
            for a in up(node):
                if a.type == "function_item":
                    return self._fn_at(a)
        except TooDeep:
            pass
        return None

    def per_request(self, fn: Fn) -> str:
        """Why fn runs per request or connection ("parameter `socket: TcpStream`"), or ""."""
        if fn is None or fn.is_startup or fn.is_test:
            return ""
        for p, _ in fn.attrs:
            if p.rsplit("::", 1)[-1] in self.vocab.handler_attributes:
                return f"per request (a `#[{p}]` handler)"
        for name, tnode, _ in fn.params:
            head = type_head(tnode)[0] if tnode is not None else ""
            if head in self.vocab.not_per_request_types:
                continue  # `socket: UdpSocket`, `listener: TcpListener`: serves everyone, once
            noun = head_noun(name, self._nouns)
            if noun:
                return f"per {_noun(noun)} (parameter `{name}`)"
            if tnode is not None:
                tnoun = head_noun(head, self._nouns) if head else None
                if tnoun:
                    return f"per {_noun(tnoun)} (parameter `{name}: {_short(tnode)}`)"
        if fn.is_async:
            for name, tnode, _ in fn.params:
                if tnode is None:
                    continue
                head, generic = type_head(tnode, unwrap=())
                if head in self.vocab.handler_types or (generic and head in self.vocab.handler_generic_types):
                    return f"per request (a handler: parameter `{name}: {_short(tnode)}`)"
        return ""

    def call_sites(self, fn: Fn) -> list:
        """[(RustFile, call node)] that may call fn: by name, free calls for free functions and
        method or `Type::` calls for methods (names are not resolved further)."""
        out = []
        for rf, call in self.calls_named(fn.name):
            if call.type != "call_expression":
                if _macro_call_matches(call, fn):
                    out.append((rf, call))  # a call written inside a macro
                continue
            f = call.child_by_field_name("function")
            if f is not None and f.type == "generic_function":
                f = f.child_by_field_name("function")
            if f is None:
                continue
            if fn.impl_type is None and f.type == "field_expression":
                continue
            if fn.impl_type is not None and f.type == "identifier":
                continue
            if f.type == "scoped_identifier":
                path = f.child_by_field_name("path")
                owner = compact(path).rsplit("::", 1)[-1] if path is not None else ""
                if owner == "Self":
                    caller = self.fn_of(call)
                    if caller is None or caller.impl_type != fn.impl_type:
                        continue
                elif owner[:1].isupper():
                    if owner != fn.impl_type:
                        continue  # `Other::new(..)` is not a call of `Cache::new`
                elif fn.impl_type is not None:
                    continue  # `module::f(..)` calls a free function
            out.append((rf, call))
        return out

    def per_via_callers(self, fn: Fn | None, depth: int = 2) -> str:
        """Why fn runs per connection/request/item through its callers: every call of it in the unit
        (outside tests) sits in a per-item or endless loop, or in a function that runs per request;
        "" when one call site does not, or fn is never called here."""
        if fn is None or fn.is_startup or fn.is_test or depth == 0:
            return ""
        key = ("via", fn, depth)
        if key in self._startup_reach:
            return self._startup_reach[key]
        self._startup_reach[key] = ""
        reasons = []
        for rf, call in self.call_sites(fn):
            caller = self.fn_of(call)
            if caller is None or caller is fn:
                reasons = []
                break
            w = self.where(rf, call)
            if w.test or caller.is_test:
                continue
            lp = w.repeating_loop(collections=False)
            if lp is not None:
                what = "on every turn of an endless loop" if lp.kind == "unbounded" else f"once per {lp.noun}"
                reasons.append(f"{what} (`{caller.display}` calls `{fn.display}` in {lp.reason})")
            elif w.per:
                reasons.append(f"{w.per[:-1]} of `{caller.display}`, which calls `{fn.display}`)"
                               if w.per.endswith(")") else w.per)
            else:
                r = self.per_via_callers(caller, depth - 1)
                if not r:
                    reasons = []
                    break
                reasons.append(r)
        out = reasons[0] if reasons else ""
        self._startup_reach[key] = out
        return out

    def calls_named(self, name: str) -> list:
        """[(RustFile, call node)] of the calls of `name` in the unit, found where the name occurs in
        the text: `f(..)`, `a::f(..)`, `x.f(..)`, `f::<T>(..)`, and the `f` of an `f(..)` written
        inside a macro's tokens (`tokio::join!(serve(), metrics())`, `info!("{}", f())`)."""
        got = self._calls.get(name)
        if got is None:
            got = self._calls[name] = []
            for rf in self.files:
                if name.encode() in rf.source.data:
                    got.extend((rf, n) for n in _calls_named(rf.source, (name,), in_macros=True))
        return got

    def startup_only(self, fn: Fn | None, depth: int = 4) -> bool:
        """fn is `main`, or every call of it in the unit is (transitively) from start-up code."""
        if fn is None:
            return False
        if fn.is_startup:
            return True
        if depth == 0 or fn.is_test:
            return False
        key = (fn, depth)
        if key in self._startup_reach:
            return self._startup_reach[key]
        self._startup_reach[key] = False  # cycles are not start-up
        sites = self.call_sites(fn)
        ok = bool(sites)
        for rf, call in sites:
            caller = self.fn_of(call)
            if caller is None or caller is fn or not self.startup_only(caller, depth - 1):
                ok = False
                break
            if self.where(rf, call).repeating_loop(collections=False) is not None:
                ok = False
                break
        self._startup_reach[key] = ok
        return ok

    # ---------------------------------------------------------------- callers in the rest of the crate
    #
    # A unit is one folder, but a crate's functions are called from all its folders: `main` in
    # src/main.rs builds the value whose constructor (in src/analytics/) spawns. Where the unit alone
    # cannot say who calls a function, the crate's other .rs files under src/ are searched byte-wise
    # for the function's name (`Analytics::new`); only files that hold it are parsed, and only when a
    # rule asks (a candidate finding), so a one-file scan stays fast.

    def crate_reach(self, fn: Fn | None, depth: int = 4) -> str:
        """How fn is reached across its crate: "startup" when every call of it (outside tests) is,
        transitively, from `main` or another start-up function and not in a repeating loop; "other"
        when some call is not; "unknown" when no call of it, or of a caller on the way, is found."""
        if fn is None:
            return "unknown"
        if self.startup_only(fn):
            return "startup"
        view = self._crate_view(fn, depth)
        vfn = view._fn_at(fn.node) if view is not None else None
        return view._reach_of(vfn, depth) if vfn is not None else self._reach_of(fn, depth)

    def public_api(self, fn: Fn) -> bool:
        """fn is `pub` in a crate with a library target (or in a folder no Cargo.toml claims): code
        outside the crate may call it, so its callers cannot all be seen."""
        vis = next((c for c in fn.node.children if c.type == "visibility_modifier"), None)
        if vis is None or text(vis) != "pub":
            return False
        root, _ = self._crate_files()
        if root is None:
            return True
        if self._fs.is_file(root / "src" / "lib.rs"):
            return True
        src = self._read(root / "Cargo.toml") if self._read is not None else None
        return src is not None and re.search(rb"(?m)^\s*\[lib\]", src.data) is not None

    def _reach_of(self, fn: Fn, depth: int) -> str:
        if fn.is_startup:
            return "startup"
        if fn.is_test:
            return "other"
        if depth == 0:
            return "unknown"
        key = (fn, depth)
        if key in self._reach:
            return self._reach[key]
        self._reach[key] = "unknown"  # a cycle says nothing
        found = []
        for rf, call in self.call_sites(fn):
            caller = self.fn_of(call)
            if caller is fn:
                continue
            if caller is None:
                found.append("unknown")  # a static's initialiser, a macro at item level
                continue
            if caller.is_test or self.where(rf, call).test:
                continue
            if self.where(rf, call).repeating_loop(collections=False) is not None:
                found.append("other")
                break
            found.append(self._reach_of(caller, depth - 1))
        if "other" in found:
            out = "other"
        elif found and all(r == "startup" for r in found):
            out = "startup"
        else:
            out = "unknown"
        self._reach[key] = out
        return out

    def _open_fns(self, fn: Fn, depth: int) -> set:
        """Functions on fn's caller tree (fn included) that nothing in these files calls."""
        out, seen, frontier = set(), {fn}, [fn]
        for _ in range(depth):
            nxt = []
            for f in frontier:
                if f.is_startup or f.is_test:
                    continue
                callers = [self.fn_of(c) for _, c in self.call_sites(f)]
                callers = [c for c in callers if c is not None and c is not f]
                if not callers:
                    out.add(f)
                for c in callers:
                    if c not in seen:
                        seen.add(c)
                        nxt.append(c)
            frontier = nxt
        return out

    def _crate_view(self, fn: Fn, depth: int) -> "UnitFacts | None":
        """A UnitFacts over this unit and the crate's files that name the functions on fn's caller
        tree that the unit does not call (grown in rounds, at most `depth` of them)."""
        _, others = self._crate_files()
        if not others or self._read is None:
            return None
        view = self._view or self
        vfn = view._fn_at(fn.node)
        for _ in range(depth):
            if vfn is None:
                break
            needles = {_needle(f) for f in view._open_fns(vfn, depth)} - self._view_needles
            if not needles:
                break
            self._view_needles |= needles
            new = []
            for path in others:
                if path in self._view_files:
                    continue
                src = self._read(path)
                if src is not None and any(n in src.data for n in needles):
                    new.append(path)
            if not new:
                break
            self._view_files.extend(new)
            srcs = [self._read(p) for p in self._view_files]
            view = self._view = UnitFacts([*self._sources, *(s for s in srcs if s is not None)], self.vocab,
                                          fs=self._fs)
            vfn = view._fn_at(fn.node)
        return view

    def _crate_files(self) -> tuple:
        """(the crate's folder, its other .rs files under src/) for the crate this unit belongs to;
        (None, []) outside a crate's src/ (examples/, tests/, a loose folder)."""
        if self._crate is None:
            self._crate = (None, [])
            if self._sources:
                folder = self._sources[0].path.parent.resolve()
                root = next((d for d in (folder, *folder.parents)
                             if self._fs.is_file(d / "Cargo.toml")), None)
                if root is not None and (folder == root / "src" or (root / "src") in folder.parents):
                    mine = {s.path.resolve() for s in self._sources}
                    others = [p for p in self._fs.rs_files_under(root / "src") if p not in mine]
                    self._crate = (root, others)
                elif root is not None:
                    self._crate = (root, [])
        return self._crate

    def fields_near_abort(self) -> set:
        """Fields of `self` named in a function that aborts a task (`.abort()`, `.abort_all()`):
        where a kept JoinHandle is stopped (`disconnect`, `Drop::drop`)."""
        if self._abort_fields is None:
            self._abort_fields = set()
            done = set()
            for name in ("abort", "abort_all", "shutdown"):
                for _, n in self.calls_named(name):
                    if n.type != "call_expression" or callee_name(n) != name:
                        continue
                    fn = self.fn_of(n)
                    if fn is None or fn in done:
                        continue
                    done.add(fn)
                    for m in walk(fn.node):
                        if m.type == "field_expression":
                            v = m.child_by_field_name("value")
                            if v is not None and v.type == "self":
                                self._abort_fields.add(text(m.child_by_field_name("field")))
        return self._abort_fields

    # ---------------------------------------------------------------------------------- resolve

    def resolve_call(self, rf: RustFile, call, here: Fn | None) -> list[Fn]:
        """The unit's functions a call may run: free functions by name, `Self::f`/`Type::f`, and
        methods (`self.f()`, or `x.f()` when one impl in the unit has an `f`)."""
        fn = call.child_by_field_name("function")
        if fn is None:
            return []
        if fn.type == "generic_function":
            fn = fn.child_by_field_name("function")
        if fn.type == "identifier":
            cands = [f for f in self.by_name.get(text(fn), ()) if f.impl_type is None and not f.is_test]
            same = [f for f in cands if f.file is rf]
            cands = same or cands
            return cands if len(cands) == 1 else []
        if fn.type == "scoped_identifier":
            name = text(fn.child_by_field_name("name"))
            path = fn.child_by_field_name("path")
            owner = compact(path).rsplit("::", 1)[-1] if path is not None else ""
            if owner == "Self" and here is not None:
                owner = here.impl_type or ""
            cands = [f for f in self.by_name.get(name, ()) if f.impl_type == owner and not f.is_test]
            first = rf.resolve_path(compact(path)).split("::", 1)[0] if path is not None else ""
            if not cands and (first in ("crate", "self", "super") or first in self._modules):
                # `module::f` for a module of this folder (not `tokio::time::sleep`)
                cands = [f for f in self.by_name.get(name, ()) if f.impl_type is None and not f.is_test]
            return cands if len(cands) == 1 else []
        if fn.type == "field_expression":
            name = text(fn.child_by_field_name("field"))
            recv = strip_parens(fn.child_by_field_name("value"))
            cands = [f for f in self.by_name.get(name, ()) if f.has_self and not f.is_test]
            if recv is not None and recv.type == "self" and here is not None and here.impl_type:
                own = [f for f in cands if f.impl_type == here.impl_type]
                return own if len(own) == 1 else []
            if recv is not None and recv.type == "identifier" and here is not None:
                t = _local_type(here, text(recv), call.start_byte)
                if t:
                    typed = [f for f in cands if f.impl_type == t]
                    if typed:
                        return typed if len(typed) == 1 else []
            return cands if len(cands) == 1 else []
        return []

    # ----------------------------------------------------------------------------------- spawns

    @property
    def spawns(self) -> list[Spawn]:
        if self._spawns is None:
            self._spawns = []
            for rf in self.files:
                self._find_spawns(rf)
        return self._spawns

    def spawn_of_arg(self, node) -> Spawn | None:
        self.spawns  # noqa: B018 - computes the index
        return self._spawn_by_arg.get(node)

    def _find_spawns(self, rf: RustFile) -> None:
        names = self.vocab.spawn_names()
        if rf.is_test_file or not any(n.encode() in rf.source.data for n in names):
            return  # a test's tasks end with the test: no rule reports them
        paths = dict(self.vocab.spawns)
        receivers = set(self.vocab.spawn_receivers)
        for call in _calls_named(rf.source, names):
            fnode = call.child_by_field_name("function")
            args = call.child_by_field_name("arguments")
            arg = args.named_children[0] if args is not None and args.named_child_count else None
            while arg is not None and arg.type in ("line_comment", "block_comment"):
                arg = arg.next_named_sibling
            if arg is None:
                continue
            if fnode.type == "field_expression":
                name = text(fnode.child_by_field_name("field"))
                if name not in SPAWN_METHODS:
                    continue
                recv = fnode.child_by_field_name("value")
                rtext = compact(recv)
                last = re.split(r"[.:]+", re.sub(r"\(.*?\)$", "", rtext))[-1] if rtext else ""
                builder = "Builder::new()" in rtext
                if not (builder or last in receivers or rtext.endswith("Handle::current()")
                        or last.rstrip("()") in receivers):
                    continue
                kind = "thread" if (name == "spawn_blocking" or "thread::" in rtext
                                    or (builder and arg.type == "closure_expression"
                                        and not _closure_returns_async(arg))) else "task"
                path = f"{rtext}.{name}"
            else:
                raw = compact(fnode)
                path = rf.resolve_path(raw)
                kind = paths.get(path) or paths.get(raw)
                if kind is None:
                    continue
            sp = Spawn(rf, call, path, kind, arg, self.fn_of(call), _fate(call, rf))
            self._spawns.append(sp)
            for body in self._spawn_bodies(sp):
                self._spawn_by_arg.setdefault(body, sp)

    def _spawn_bodies(self, sp: Spawn) -> list:
        """The lexical bodies (async blocks, closures) a spawn runs, for Where.task."""
        out, node = [], sp.arg
        for _ in range(4):
            node = strip_parens(node)
            if node is None:
                break
            if node.type in ("async_block", "closure_expression"):
                out.append(node)
                if node.type == "closure_expression":
                    b = node.child_by_field_name("body")
                    if b is not None and b.type == "async_block":
                        out.append(b)
                break
            inner = self._unwrap_future(node)
            if inner is None:
                break
            node = inner
        return out

    def _unwrap_future(self, node):
        """`fut.instrument(span)` / `Box::pin(fut)` -> fut; None when node is no such wrapper."""
        if node is None or node.type != "call_expression":
            return None
        fn = node.child_by_field_name("function")
        name = callee_name(node)
        if fn is not None and fn.type == "field_expression" and name in self.vocab.handle_wrappers:
            return fn.child_by_field_name("value")
        if fn is not None and fn.type == "scoped_identifier" and compact(fn) in ("Box::pin", "std::boxed::Box::pin"):
            args = node.child_by_field_name("arguments")
            return args.named_children[0] if args is not None and args.named_child_count else None
        return None

    def task_roots(self, sp: Spawn) -> list[tuple]:
        """[(RustFile, node, Fn|None)]: what the task runs first: its async block or closure body,
        or the body of the unit function its future comes from (`process(socket)`, `conn.run()`)."""
        node, rf = sp.arg, sp.file
        for _ in range(6):
            node = strip_parens(node)
            if node is None:
                return []
            if node.type == "async_block":
                return [(rf, node, sp.fn)]
            if node.type == "closure_expression":
                return [(rf, node.child_by_field_name("body"), sp.fn)]
            inner = self._unwrap_future(node)
            if inner is not None:
                node = inner
                continue
            if node.type == "call_expression":
                return [(f.file, f.body, f) for f in self.resolve_call(rf, node, sp.fn) if f.body is not None]
            if node.type in ("identifier", "field_expression") and sp.fn is not None:
                if node.type == "field_expression":  # `self.run` passed as a function? rare
                    return []
                value = _let_value(sp.fn, text(node), sp.call.start_byte)
                if value is None:
                    return []
                node = value
                continue
            return []
        return []

    # ------------------------------------------------------------------------------------ where

    def where(self, rf: RustFile, node) -> Where:
        """Where node sits: walks its ancestors once, up to (and through) its function item. A node
        too deep to place is reported as test code: the rules stay silent about it."""
        try:
            return self._where(rf, node)
        except TooDeep:
            return Where(test=True)

    def _where(self, rf: RustFile, node) -> Where:
        w = Where()
        child = node
        chain = list(up(node))  # once: each .parent walks down from the root
        for i, a in enumerate(chain):
            t = a.type
            if t in LOOPS:
                if _in_loop_body(a, child):
                    w.loops.append(self.classify_loop(a, node, chain[:i]))
            elif t in ("closure_expression", "async_block"):
                sp = self.spawn_of_arg(a)
                if sp is not None and w.task is None:
                    w.task = sp
                if t == "closure_expression":
                    w.closures.append(a)
                    once = self._once_call(a)
                    if once and not w.once:
                        w.once = f"`{once}` initialiser"
                    if not w.per:
                        params = a.child_by_field_name("parameters")
                        for pname in identifiers_in_pattern(params):
                            noun = head_noun(pname, self._nouns)
                            if noun:
                                w.per = f"per {_noun(noun)} (closure parameter `{pname}`)"
                                break
            elif t in ("static_item", "const_item"):
                if not w.once:
                    w.once = "static initialiser"
            elif t == "macro_invocation":
                if macro_name(a) in ("lazy_static", "thread_local") and not w.once:
                    w.once = f"`{macro_name(a)}!` initialiser"
            elif t == "function_item":
                fn = self._fn_at(a)
                if w.fn is None:
                    w.fn = fn
                    if fn is not None:
                        w.test = fn.is_test
                        if not w.per:
                            w.per = self.per_request(fn)
                break
            elif t in ("mod_item",):
                if any(_is_cfg_test(*_attribute_path(at)) for at in leading_attributes(a)):
                    w.test = True
            child = a
        if rf.is_test_file:
            w.test = True
        return w

    def _once_call(self, closure) -> str:
        args = closure.parent
        if args is None or args.type != "arguments":
            return ""
        call = args.parent
        if call is None or call.type != "call_expression":
            return ""
        fn = call.child_by_field_name("function")
        name = callee_name(call)
        path = compact(fn) if fn is not None and fn.type != "field_expression" else name
        for entry in self.vocab.once_calls:
            if "::" in entry:
                if path == entry or path.endswith("::" + entry):
                    return entry
            elif name == entry:
                return entry
        return ""

    def classify_loop(self, loop, node=None, path=None) -> LoopInfo:
        """How often a loop's body runs: per item received or connection accepted, forever, over a
        collection, or a fixed number of times. reason is a noun phrase ("a loop over
        `listener.accept()`"), noun what one turn stands for ("connection", "peer", "item")."""
        sources = set(self.vocab.item_sources)
        once = node is not None and _leaves_after(loop, node, path)
        info = self._classify_loop(loop, sources, once)
        if info.kind == "per-item" and info.noun == "item" and path and any(
                a.type == "match_arm" for a in path):
            # an actor's command loop: one arm of a `match` on the received message runs for some
            # messages only (`FirstClientConnected`), not for every item
            info.kind = "dispatch"
        return info

    def _classify_loop(self, loop, sources, once) -> LoopInfo:
        if loop.type == "for_expression":
            pat, value = loop.child_by_field_name("pattern"), loop.child_by_field_name("value")
            src = _source_call(value, sources)
            if src is not None:
                return LoopInfo(loop, "per-item", f"a `for` loop over `{_short(value)}`", once, _source_noun(src))
            for name in identifiers_in_pattern(pat):
                noun = head_noun(name, self._loop_nouns)
                if noun:
                    return LoopInfo(loop, "per-item", f"a `for {name} in ..` loop", once, _noun(noun))
            vname = _value_name(value)
            noun = head_noun(vname, self._loop_nouns, plural=True) if vname else None
            if noun:
                return LoopInfo(loop, "per-item", f"a `for` loop over `{vname}`", once, _noun(noun))
            if _bounded_value(value, loop):
                return LoopInfo(loop, "bounded", "", once)
            return LoopInfo(loop, "collection", f"a `for` loop over `{_short(value)}`", once)
        if loop.type == "while_expression":
            cond = loop.child_by_field_name("condition")
            if cond is not None and cond.type == "let_condition":
                value = cond.child_by_field_name("value")
                src = _source_call(value, sources)
                if src is not None:
                    return LoopInfo(loop, "per-item", f"a `while let` loop over `{_short(value)}`", once,
                                    _source_noun(src))
                for name in identifiers_in_pattern(cond.child_by_field_name("pattern")):
                    noun = head_noun(name, self._loop_nouns)
                    if noun:
                        return LoopInfo(loop, "per-item", f"a `while let` loop over each {_noun(noun)}", once,
                                        _noun(noun))
            elif cond is not None:
                src = _source_call(cond, sources)
                if src is not None:
                    return LoopInfo(loop, "per-item", f"a `while` loop over `{_short(src)}`", once,
                                    _source_noun(src))
                if cond.type == "boolean_literal" and text(cond) == "true":
                    return LoopInfo(loop, "unbounded", "an endless `while true` loop", once)
            # `while let Some(p) = text.find(..)`, `while i < n`: as long as the data lasts
            return LoopInfo(loop, "collection", "a `while` loop", once)
        body = loop.child_by_field_name("body")
        for n in walk(body, prune=lambda n: n.type in BODY_BOUNDARIES or n.type in LOOPS):
            if n.type == "call_expression" and callee_name(n) in sources:
                return LoopInfo(loop, "per-item", f"a loop over `{_short(n)}`", once, _source_noun(n))
        return LoopInfo(loop, "unbounded", "an endless `loop`", once)


# ------------------------------------------------------------------------------- module helpers

_NOUNS = {"conn": "connection", "req": "request", "sock": "socket", "ws": "websocket", "peers": "peer"}


def _noun(word: str) -> str:
    return _NOUNS.get(word, word)


def _short(node, limit: int = 40) -> str:
    s = _WS.sub(" ", text(node)).strip()
    return s if len(s) <= limit else s[: limit - 3] + "..."




def _macro_call_matches(ident, fn: Fn) -> bool:
    """A call written in a macro's tokens (`json!({"a": Infos::new(x)})`) may call fn: `Type::name(`
    only for fn of Type (or `Self`), `.name(` only for a method, a bare `name(` only for a free
    function."""
    prev = ident.prev_sibling
    if prev is not None and prev.type == "::":
        owner = prev.prev_sibling
        name = text(owner) if owner is not None and owner.type == "identifier" else ""
        if name[:1].isupper() or name == "Self":
            return fn.impl_type is not None and name in (fn.impl_type, "Self")
        return fn.impl_type is None  # `module::f(..)`
    if prev is not None and prev.type == ".":
        return fn.has_self
    return fn.impl_type is None


def _needle(fn: Fn) -> bytes:
    """What a call of fn has to contain: `Type::name` for an associated function, else the name."""
    if fn.impl_type and not fn.has_self:
        return f"{fn.impl_type}::{fn.name}".encode()
    return fn.name.encode()


def _is_test_file(path: Path, is_file) -> bool:
    """Cargo integration tests and benches (`<crate>/tests/*.rs`), and `tests.rs`/`test.rs` modules."""
    if path.name in ("tests.rs", "test.rs"):
        return True
    for parent in path.parents:
        if parent.name in ("tests", "benches"):
            if is_file(parent.parent / "Cargo.toml"):
                return True
    return False


def _imports(root) -> dict:
    """{local name: full path} from the file's top-level `use` declarations (nested lists and `as`)."""
    out: dict[str, str] = {}
    for decl in root.children:
        if decl.type != "use_declaration":
            continue
        arg = decl.child_by_field_name("argument")
        stack = [("", arg)]
        while stack:
            prefix, n = stack.pop()
            if n is None:
                continue
            join = (lambda s: f"{prefix}::{s}" if prefix else s)
            if n.type in ("identifier", "scoped_identifier", "crate", "self", "super"):
                full = join(compact(n))
                last = full.rsplit("::", 1)[-1]
                if last == "self":
                    full = full.rsplit("::", 1)[0]
                    last = full.rsplit("::", 1)[-1]
                out[last] = full
            elif n.type == "use_as_clause":
                path, alias = n.child_by_field_name("path"), n.child_by_field_name("alias")
                if path is not None and alias is not None:
                    out[text(alias)] = join(compact(path))
            elif n.type == "scoped_use_list":
                path = n.child_by_field_name("path")
                new_prefix = join(compact(path)) if path is not None else prefix
                lst = n.child_by_field_name("list")
                for c in (lst.named_children if lst is not None else ()):
                    stack.append((new_prefix, c))
            elif n.type == "use_list":
                for c in n.named_children:
                    stack.append((prefix, c))
    return out


def _closure_returns_async(closure) -> bool:
    body = closure.child_by_field_name("body")
    return body is not None and body.type == "async_block"


def _in_loop_body(loop, child) -> bool:
    """child is the loop's body (not its `for` value or `while` condition, evaluated once)."""
    body = loop.child_by_field_name("body")
    if body is None:
        return False
    if child == body:
        return True
    if loop.type == "while_expression":
        cond = loop.child_by_field_name("condition")
        return cond is not None and child == cond and cond.type != "let_condition"
    return False


def _leaves_after(loop, node, path=None) -> bool:
    """After the statement holding node, the loop is left at once (`spawn(..); break;`, `return`): a
    retry or connect loop that does the thing once, not once per iteration. path: node's ancestors
    below the loop, when the caller has them."""
    found = False
    cur = node
    for a in (path + [loop] if path is not None else up(node)):  # TooDeep: where() skips the node
        if a == loop:
            return found
        if a.type in LOOPS or a.type in BODY_BOUNDARIES:
            found = False  # a `break` below a nested loop leaves that loop, not ours
        elif a.type == "block" and not found:
            sib = cur.next_named_sibling
            while sib is not None:
                s = sib.named_children[0] if sib.type == "expression_statement" and sib.named_child_count else sib
                if s.type in ("return_expression", "break_expression"):
                    found = True
                    break
                sib = sib.next_named_sibling
        cur = a
    return False


def _source_call(node, names):
    """The first call in node to one of names (`listener.accept()`, `rx.recv()`), or None."""
    if node is None:
        return None
    for n in walk(node, prune=lambda n: n.type in BODY_BOUNDARIES):
        if n.type == "call_expression" and callee_name(n) in names:
            return n
    return None


def _source_noun(call) -> str:
    name = callee_name(call)
    if "accept" in name or "incoming" in name or "connection" in name:
        return "connection"
    if "request" in name:
        return "request"
    return "item"


def _value_name(value) -> str:
    """The collection a `for` iterates: `peers` in `&peers`, `self.peers.iter()`, `conns.drain(..)`."""
    v = value
    for _ in range(8):
        v = strip_parens(v)
        if v is None:
            return ""
        if v.type == "reference_expression":
            v = v.child_by_field_name("value")
        elif v.type == "call_expression":
            fn = v.child_by_field_name("function")
            if fn is None or fn.type != "field_expression":
                return ""
            v = fn.child_by_field_name("value")
        elif v.type == "field_expression":
            return text(v.child_by_field_name("field"))
        elif v.type == "identifier":
            return text(v)
        else:
            return ""
    return ""


def _bounded_value(value, loop) -> bool:
    """A `for` over a literal range or array, or a local bound to an array literal: a fixed count."""
    v = strip_parens(value)
    for _ in range(6):
        if v is None:
            return False
        if v.type == "reference_expression":
            v = v.child_by_field_name("value")
            continue
        if v.type == "call_expression":
            fn = v.child_by_field_name("function")
            if fn is not None and fn.type == "field_expression" and callee_name(v) in (
                    "iter", "into_iter", "enumerate", "rev", "chars", "bytes", "copied", "cloned"):
                v = fn.child_by_field_name("value")
                continue
            return False
        break
    if v.type == "range_expression":
        return all(c.type in ("integer_literal", "identifier", "scoped_identifier", "field_expression")
                   and (c.type == "integer_literal" or text(c).rsplit("::", 1)[-1].isupper())
                   for c in v.named_children)
    if v.type == "array_expression":
        return True
    if v.type == "identifier":
        name = text(v)
        if name.isupper():
            return True  # a const or static table
        fn = next((a for a in up(loop) if a.type == "function_item"), None)
        if fn is not None:
            val = _let_value_node(fn, name, loop.start_byte)
            val = strip_parens(val)
            while val is not None and val.type == "reference_expression":
                val = val.child_by_field_name("value")
            return val is not None and val.type == "array_expression"
    return False


def _let_value_node(fn_node, name: str, before: int):
    best = None
    for n in walk(fn_node.child_by_field_name("body") or fn_node, prune=lambda n: n.type == "function_item"):
        if n.start_byte >= before:
            break
        if n.type == "let_declaration":
            pat = n.child_by_field_name("pattern")
            if pat is not None and pat.type == "identifier" and text(pat) == name:
                best = n.child_by_field_name("value")
    return best


def _let_value(fn: Fn, name: str, before: int):
    return _let_value_node(fn.node, name, before)


def _local_type(fn: Fn, name: str, before: int) -> str:
    """A local's type when its `let` says so: `let x: T`, `T { .. }`, `T::new(..)`, `T::from(..)`."""
    for pname, tnode, _ in fn.params:
        if pname == name and tnode is not None:
            return type_head(tnode, unwrap=("Box", "Pin", "Option", "Arc", "Rc"))[0]
    for n in walk(fn.body or fn.node, prune=lambda n: n.type == "function_item"):
        if n.start_byte >= before:
            break
        if n.type != "let_declaration":
            continue
        pat = n.child_by_field_name("pattern")
        if pat is None:
            continue
        if pat.type == "mut_pattern" and pat.named_child_count:
            pat = pat.named_children[0]
        if pat.type != "identifier" or text(pat) != name:
            continue
        t = n.child_by_field_name("type")
        if t is not None:
            return type_head(t, unwrap=("Box", "Pin", "Option", "Arc", "Rc"))[0]
        v = strip_parens(n.child_by_field_name("value"))
        while v is not None and v.type in ("try_expression", "await_expression"):
            v = v.named_children[0] if v.named_child_count else None
        if v is None:
            continue
        if v.type == "struct_expression":
            return compact(v.child_by_field_name("name")).rsplit("::", 1)[-1]
        if v.type == "call_expression":
            f = v.child_by_field_name("function")
            if f is not None and f.type == "scoped_identifier":
                path = f.child_by_field_name("path")
                if path is not None:
                    return compact(path).rsplit("::", 1)[-1]
    return ""


def call_fate(call) -> str:
    """What the caller does with the value of call (a JoinHandle): see _fate."""
    return _fate(call, None)


def _fate(call, rf, hops: int = 0) -> str:
    """What becomes of a spawn's JoinHandle: dropped on the floor, kept (bound, stored, returned,
    passed on), awaited/joined, or handed to an abort-on-drop guard / aborted."""
    node = call
    p = node.parent
    while p is not None and p.type in ("parenthesized_expression",):
        node, p = p, p.parent
    if p is None:
        return "dropped"
    if p.type == "match_arm" and hops < 8:
        # the value of an arm is the value of its `match`: `Ok(s) => tokio::spawn(..),`
        m = p.parent.parent if p.parent is not None else None
        return _fate(m, rf, hops + 1) if m is not None else "dropped"
    if p.type == "expression_statement":
        if hops < 8 and not any(c.type == ";" for c in p.children) and _is_tail(p):
            return _fate(p, rf, hops + 1)  # `if c { spawn(..) } else { .. }` ending a block
        return "dropped"
    if p.type == "block" and _is_tail(node, p):
        outer = p.parent
        if outer is None:
            return "dropped"
        if outer.type == "function_item":
            return "returned"
        if hops < 8:
            if outer.type == "else_clause":
                outer = outer.parent
            if outer is not None and outer.type == "match_arm" and outer.parent is not None:
                return _fate(outer.parent.parent, rf, hops + 1)
            if outer is not None and outer.type in ("if_expression", "unsafe_block", "block"):
                return _fate(outer, rf, hops + 1)
            if outer is not None and outer.type == "expression_statement":
                return _fate(p, rf, hops + 1)
        return "kept"  # a closure's or async block's value: `.map(|c| tokio::spawn(..)).collect()`
    if p.type == "await_expression":
        return "awaited"
    if p.type == "return_expression":
        return "returned"
    if p.type == "field_expression":
        call2 = p.parent
        name = text(p.child_by_field_name("field"))
        if name in ("join", "await"):
            return "awaited"
        if name in ("abort", "abort_handle"):
            return "aborted"
        if name in ("detach",):
            return "dropped"
        if name in ("unwrap", "expect") and call2 is not None and call2.type == "call_expression":
            return _fate(call2, rf, hops + 1)  # `Builder::new().spawn(..).unwrap()`: io::Result<JoinHandle>
        return "kept" if call2 is not None else "dropped"
    if p.type == "try_expression":  # Builder::spawn(..)? / .unwrap()
        return _fate(p, rf, hops + 1)
    if p.type == "let_declaration":
        pat = p.child_by_field_name("pattern")
        if pat is None or text(pat) == "_":
            return "dropped"
        ids = identifiers_in_pattern(pat)
        if not ids:
            return "dropped"
        return _binding_fate(p, ids[0])
    if p.type == "arguments":
        outer = p.parent
        name = callee_name(outer) if outer is not None and outer.type == "call_expression" else ""
        fn = outer.child_by_field_name("function") if outer is not None else None
        ftext = compact(fn) if fn is not None else ""
        if "abort" in ftext.lower() or "AbortOnDrop" in ftext:
            return "aborted"
        if name in ("block_on", "join", "join_all", "try_join_all", "select", "timeout"):
            return "awaited"
        return "kept"
    return "kept"


def _is_tail(node, block=None) -> bool:
    """node is the last statement or expression of its block (comments aside)."""
    block = block if block is not None else node.parent
    if block is None or block.type != "block":
        return False
    last = None
    for c in block.named_children:
        if c.type not in ("line_comment", "block_comment"):
            last = c
    return last == node


def _binding_fate(let, name: str) -> str:
    try:
        fn = next((a for a in up(let) if a.type in ("function_item", "closure_expression")), None)
    except TooDeep:
        return "kept"
    scope = let.parent
    if fn is None or scope is None:
        return "kept"
    uses = []
    for n in walk(scope, prune=lambda n: n.type == "function_item"):
        if n.start_byte <= let.end_byte:
            continue
        if n.type == "identifier" and text(n) == name:
            uses.append(n)
    if not uses:
        return "dropped"
    fate = "kept"
    for u in uses:
        p = u.parent
        if p is not None and p.type == "field_expression":
            field_name = text(p.child_by_field_name("field"))
            if field_name in ("abort", "abort_handle"):
                return "aborted"
            if field_name == "join":
                fate = "awaited"
        elif p is not None and p.type == "await_expression":
            fate = "awaited"
        elif p is not None and (p.type == "return_expression" or (
                p.type == "block" and p.parent is not None and p.parent.type == "function_item"
                and p.named_children and p.named_children[-1] == u)):
            if fate == "kept":
                fate = "returned"
        elif p is not None and p.type == "token_tree":
            fate = "awaited"  # `select! { _ = handle => ... }`, `join!(a, b)`
    return fate
