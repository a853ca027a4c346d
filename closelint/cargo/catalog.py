"""CL201's knowledge table compiled for look-ups: per crate and version range, which features pull
native-tls / OpenSSL, whether defaults do, and what to use instead. The rows are data in
rules/CL201-native-tls-dependency.toml (plus the user's [[tool.closelint.CL201.crates]] rows, which
are compiled exactly like the built-in ones)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from closelint.cargo import cfg
from closelint.cargo.semver import SemverError, Version, lowest, parse_requirement, parse_version

_ANNOTATION = re.compile(r"\s*\(([^)]*)\)\s*$")


@dataclass(frozen=True)
class Forward:
    crate: str
    feature: str | None  # None: the crate itself (an optional dependency), with its default features
    defaults: bool       # the annotation says the crate comes with its default features


@dataclass
class Row:
    name: str
    versions: str
    range: object
    always: bool = False
    native_features: frozenset = frozenset()
    native_order: tuple = ()
    default_native: bool = False
    rustls_feature: str = ""
    rustls_defaults: str = ""   # a feature that is "the default set with rustls instead" (mysql)
    rustls_by_default: bool = False  # with default features on, TLS is already rustls
    rustls_extra: tuple = ()    # features to add with rustls-feature when defaults are turned off
    replace: dict = field(default_factory=dict)
    no_rustls: bool = False     # no release of the crate has a rustls backend: only another crate avoids OpenSSL
    targets: str = ""
    platforms: frozenset = cfg.ALL
    forwards: dict = field(default_factory=dict)  # native feature -> [Forward]
    instead: str = ""
    note: str = ""
    index: int = 0

    @property
    def mentioned(self) -> dict[str, bool]:
        """crate -> True when some native feature pulls it in with its own native features on."""
        out: dict[str, bool] = {}
        for fwds in self.forwards.values():
            for f in fwds:
                out[f.crate] = out.get(f.crate, False) or f.feature is not None or f.defaults
        return out

    @property
    def gated(self) -> frozenset:
        """Crates that only some native feature of this crate brings in (optional dependencies)."""
        names = {f.crate for fwds in self.forwards.values() for f in fwds if f.feature is None}
        return frozenset(names | set(self.native_features))


def _is_glob(name: str) -> bool:
    return any(ch in name for ch in "*?[")


@dataclass
class Catalog:
    """Rows by crate name. A row's name may be a glob (`rusoto_*`): exact names win, and a
    [[not-native]] row keeps a crate out of a glob."""

    rows: dict[str, list[Row]]
    defaults: dict[str, list[tuple[object, list[str]]]]
    not_native: dict[str, list[object]]
    errors: list[str]

    def _rows_for(self, name: str) -> list[Row]:
        exact = self.rows.get(name)
        if exact:
            return exact
        if name in self.not_native:
            return []
        return [r for pat, rows in self.rows.items() if _is_glob(pat) and fnmatchcase(name, pat) for r in rows]

    def row(self, name: str, version: Version | None) -> Row | None:
        for r in self._rows_for(name):
            if version is not None and version in r.range:
                return r
        return None

    def newest(self, name: str) -> Row | None:
        rows = self._rows_for(name)
        unbounded = [r for r in rows if r.range.high is None]
        if unbounded:
            return max(unbounded, key=lambda r: r.range.low)
        return max(rows, key=lambda r: r.range.high) if rows else None

    def default_features(self, name: str, version: Version | None) -> list[str] | None:
        entries = self.defaults.get(name) or [e for pat, es in self.defaults.items()
                                              if _is_glob(pat) and fnmatchcase(name, pat) for e in es]
        for rng, feats in entries:
            if version is not None and version in rng:
                return feats
        return None

    def is_not_native(self, name: str, version: Version | None) -> bool:
        return any(version is not None and version in rng for rng in self.not_native.get(name, ()))

    def upgrade_to(self, name: str, after: Version) -> Row | None:
        """The first row above `after` that has a rustls backend."""
        cands = [r for r in self._rows_for(name) if r.rustls_feature and not r.always
                 and r.range.low > after]
        return min(cands, key=lambda r: r.range.low) if cands else None


def _str_list(row: dict, key: str, errors: list, where: str) -> tuple[str, ...]:
    value = row.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors.append(f"{where}: {key} must be a list of strings")
        return ()
    return tuple(value)


def _forward(text: str) -> Forward:
    annotation = ""
    m = _ANNOTATION.search(text)
    if m:
        annotation = m.group(1)
        text = text[: m.start()]
    crate, _, feature = text.strip().partition("/")
    return Forward(crate.strip().rstrip("?"), feature.strip() or None, "default" in annotation)


def compile_catalog(catalogs: dict) -> Catalog:
    errors: list[str] = []
    rows: dict[str, list[Row]] = {}
    for i, raw in enumerate(catalogs.get("crates", [])):
        where = f"crates row {i + 1}" + (f" ({raw.get('name')})" if isinstance(raw, dict) else "")
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            errors.append(f"{where}: needs a name")
            continue
        try:
            rng = parse_requirement(raw.get("versions", "*"))
        except SemverError as exc:
            errors.append(f"{where}: versions: {exc}")
            continue
        nf = _str_list(raw, "native-features", errors, where)
        fwd = raw.get("forwards", {})
        if not isinstance(fwd, dict):
            errors.append(f"{where}: forwards must be a table of feature = [crates]")
            fwd = {}
        forwards = {k: [_forward(v) for v in vals if isinstance(v, str)]
                    for k, vals in fwd.items() if isinstance(vals, list)}
        replace = raw.get("replace", {})
        if not isinstance(replace, dict) or not all(isinstance(v, str) for v in replace.values()):
            errors.append(f"{where}: replace must be a table of native-feature = \"rustls feature\"")
            replace = {}
        targets = raw.get("targets", "")
        targets = targets if isinstance(targets, str) else ""
        row = Row(
            name=raw["name"], versions=str(raw.get("versions", "*")), range=rng,
            always=raw.get("always-native") is True, native_features=frozenset(nf), native_order=nf,
            default_native=raw.get("default-native") is True,
            rustls_feature=raw.get("rustls-feature", "") if isinstance(raw.get("rustls-feature", ""), str) else "",
            rustls_defaults=raw.get("rustls-defaults", "") if isinstance(raw.get("rustls-defaults", ""), str) else "",
            rustls_by_default=raw.get("rustls-by-default") is True,
            rustls_extra=_str_list(raw, "rustls-extra", errors, where),
            replace=dict(replace), no_rustls=raw.get("no-rustls") is True,
            targets=targets, platforms=cfg.platforms(targets),
            forwards=forwards, instead=str(raw.get("instead", "")), note=str(raw.get("note", "")), index=i)
        rows.setdefault(row.name, []).append(row)
    defaults: dict[str, list] = {}
    for i, raw in enumerate(catalogs.get("defaults", [])):
        where = f"defaults row {i + 1}"
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            errors.append(f"{where}: needs a name")
            continue
        try:
            rng = parse_requirement(raw.get("versions", "*"))
        except SemverError as exc:
            errors.append(f"{where}: versions: {exc}")
            continue
        defaults.setdefault(raw["name"], []).append((rng, list(_str_list(raw, "features", errors, where))))
    not_native: dict[str, list] = {}
    for i, raw in enumerate(catalogs.get("not-native", [])):
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            errors.append(f"not-native row {i + 1}: needs a name")
            continue
        try:
            not_native.setdefault(raw["name"], []).append(parse_requirement(raw.get("versions", "*")))
        except SemverError as exc:
            errors.append(f"not-native row {i + 1}: versions: {exc}")
    return Catalog(rows, defaults, not_native, errors)


@dataclass(frozen=True)
class Resolved:
    """Which version a dependency is, and how sure we are."""

    version: Version | None
    text: str        # what to print: "0.11.27", "`0.11` (0.11.0 or later)", ...
    exact: bool      # from Cargo.lock
    caveat: str = ""  # said in the message when the version is a guess


def version_of(catalog: Catalog, name: str, requirement: str | None, locked: str | None) -> tuple[Row | None, Resolved]:
    """The table row for a dependency: by its locked version, else by the lowest version its
    requirement allows; `*`, an open upper end or no version at all mean "the newest"."""
    if locked:
        try:
            v = parse_version(locked)
        except SemverError:
            v = None
        if v is not None:
            return catalog.row(name, v), Resolved(v, locked, True)
    if requirement:
        try:
            rng = parse_requirement(requirement)
        except SemverError:
            rng = None
        if rng is not None and not rng.unbounded:
            low = lowest(rng)
            return catalog.row(name, low), Resolved(low, f"`{requirement}`", False)
        row = catalog.newest(name)
        what = f"`{requirement}`" if rng is not None else f"`{requirement}` (not a version requirement)"
        newest = row.range.low if row is not None else None
        return row, Resolved(lowest(row.range) if row else None, what, False,
                             f"version {what} has no upper bound: assuming the newest release"
                             + (f", {lowest(row.range)} or later" if newest else ""))
    row = catalog.newest(name)
    return row, Resolved(lowest(row.range) if row else None, "(no version)", False,
                         "no version given (git or path): assuming a current release")
