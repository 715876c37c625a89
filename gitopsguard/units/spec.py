"""A Unit's spec, read from a rendered object (a file of the root path) or a live one, strictly.

The body comes from Git, before any API server has checked it against the CRD's schema, so every field is
checked here as the schema would (``manifests/crds/unit.yaml``) and more: exact types (``"true"`` is no bool,
``300`` no duration), ASCII names, bounded lists and texts, durations in range, and paths that stay inside
the repository. An unknown field is refused rather than ignored: ``dependOn:`` would otherwise drop an
ordering silently. Every error starts with where the object came from and the object:
``units/team-a.yaml:7: Unit/team-a/app: spec.interval: "5 minutes" is not a duration like 5m``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from gitopsguard.errors import UnitError
from gitopsguard.model import API_VERSION, Manifest
from gitopsguard.units.identity import UnitRef, is_dns_label, is_dns_subdomain, unit_id

KIND = "Unit"
GROUP = API_VERSION.partition("/")[0]
MAX_DEPENDS_ON = 32
MAX_CEL_CHECKS = 16
MAX_EXPRESSION_CHARS = 1024
MAX_PATH_CHARS = 512
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
INTERVAL_RANGE = (timedelta(seconds=10), timedelta(days=7))
TIMEOUT_RANGE = (timedelta(seconds=1), timedelta(days=1))
# One segment: not empty, not "..", of the characters a path in a repository usually has. The CRD's pattern
# is the same expression (tests/unit/units/test_unit_spec_schema_agrees.py holds them together).
_SEGMENT = r"(\.?[A-Za-z0-9_@+~-][A-Za-z0-9._@+~-]*|\.\.[A-Za-z0-9._@+~-]+|\.)"
PATH_PATTERN = rf"^{_SEGMENT}(/{_SEGMENT})*/?$"
DURATION_PATTERN = r"^[0-9]{1,6}[smhd]$"
_FIELDS = frozenset({"path", "interval", "dependsOn", "serviceAccountName", "suspend", "reportOnly", "prune", "wait",
                     "timeout", "policiesPath", "targetNamespace"})  # fmt: skip


@dataclass(frozen=True)
class CelCheck:
    """Health of one kind that has no built-in check: ready when ``expression`` (CEL, over ``self``) holds."""

    api_version: str
    kind: str
    expression: str


@dataclass(frozen=True)
class WaitSpec:
    enabled: bool = False
    cel: tuple[CelCheck, ...] = ()


@dataclass(frozen=True)
class UnitDefaults:
    """What the operator sets for Units that say nothing (flags of the controller)."""

    interval: timedelta = timedelta(minutes=5)


DEFAULTS = UnitDefaults()


@dataclass(frozen=True)
class UnitSpec:
    """One Unit as gitopsguard serves it. ``service_account_name`` None: the operator's default account;
    ``timeout`` None: the interval; ``policies_path``/``target_namespace`` None: not set."""

    ref: UnitRef
    origin: str  # where it was read: ``file:line`` of the root path, or ``Unit/NS/NAME`` for a live object
    path: str
    interval: timedelta
    depends_on: tuple[UnitRef, ...] = ()
    service_account_name: str | None = None
    suspend: bool = False
    report_only: bool = False
    prune: bool = True
    wait: WaitSpec = WaitSpec()
    timeout: timedelta | None = None
    policies_path: str | None = None
    target_namespace: str | None = None
    generation: int = 0  # metadata.generation of a live object (0 for a rendered one)

    @property
    def id(self) -> str:
        return unit_id(self.ref.namespace, self.ref.name)


def is_unit(body: Mapping[str, Any]) -> bool:
    """Whether a body is a Unit of any version of our group (kind compared without case: fail closed)."""
    group = str(body.get("apiVersion") or "").partition("/")[0]
    return group == GROUP and str(body.get("kind") or "").lower() in ("unit", "units")


def parse_unit(manifest: Manifest, defaults: UnitDefaults = DEFAULTS, *, namespace: str = "") -> UnitSpec:
    """The spec of a Unit body; ``namespace`` stands for a missing ``metadata.namespace`` (the apply's default).
    UnitError naming the origin, the Unit and the field otherwise."""
    body = manifest.body
    metadata = body.get("metadata")
    if not isinstance(metadata, Mapping):
        raise UnitError(f"{manifest.origin}: Unit: metadata must be a mapping with a name")
    ref = _ref_of(manifest.origin, metadata, namespace)
    where = f"{manifest.origin}: {ref}"
    if body.get("apiVersion") != API_VERSION or body.get("kind") != KIND:
        raise UnitError(f"{where}: apiVersion and kind must be {API_VERSION} {KIND}")
    spec = body.get("spec")
    if not isinstance(spec, Mapping):
        raise UnitError(f"{where}: spec must be a mapping with at least a path")
    unknown = sorted(str(key) for key in spec if key not in _FIELDS)
    if unknown:
        raise UnitError(f"{where}: spec.{ascii(unknown[0])[1:-1][:64]}: no such field; the fields are "
                        f"{', '.join(sorted(_FIELDS))}")  # fmt: skip
    read = _Reader(where, spec)
    return UnitSpec(
        ref=ref, origin=manifest.origin, path=read.path("path", required=True) or "",
        interval=read.duration("interval", INTERVAL_RANGE) or defaults.interval,
        depends_on=_depends_on(where, spec.get("dependsOn"), ref),
        service_account_name=read.name("serviceAccountName", is_dns_subdomain),
        suspend=read.flag("suspend", False), report_only=read.flag("reportOnly", False),
        prune=read.flag("prune", True), wait=_wait(where, spec.get("wait")),
        timeout=read.duration("timeout", TIMEOUT_RANGE), policies_path=read.path("policiesPath"),
        target_namespace=read.name("targetNamespace", is_dns_label), generation=_generation(where, metadata),
    )  # fmt: skip


def _ref_of(origin: str, metadata: Mapping[str, Any], namespace: str) -> UnitRef:
    name, ns = metadata.get("name"), metadata.get("namespace") or namespace
    if not is_dns_subdomain(name):
        raise UnitError(f"{origin}: Unit: metadata.name {_shown(name)} is not a valid object name (lower-case "
                        "letters, digits, '-' and '.', at most 253)")  # fmt: skip
    if not is_dns_label(ns):
        raise UnitError(f"{origin}: Unit/{name}: metadata.namespace {_shown(ns)} is not a valid namespace name")
    return UnitRef(str(ns), str(name))


def _generation(where: str, metadata: Mapping[str, Any]) -> int:
    generation = metadata.get("generation", 0)
    if type(generation) is not int or not 0 <= generation < 2**63:
        raise UnitError(f"{where}: metadata.generation {_shown(generation)} is not a generation")
    return generation


class _Reader:
    """Typed, bounded reads of one spec's scalar fields; each error names the field."""

    def __init__(self, where: str, spec: Mapping[str, Any]) -> None:
        self._where, self._spec = where, spec

    def _fail(self, field: str, problem: str) -> UnitError:
        return UnitError(f"{self._where}: spec.{field}: {_shown(self._spec.get(field))} {problem}")

    def flag(self, field: str, default: bool) -> bool:
        value = self._spec.get(field, default)
        if value is None:
            return default
        if type(value) is not bool:
            raise self._fail(field, "is not true or false")
        return value

    def name(self, field: str, valid: Any) -> str | None:
        value = self._spec.get(field)
        if value is None:
            return None
        if not valid(value):
            raise self._fail(field, "is not a valid name (lower-case letters, digits and '-')")
        return str(value)

    def duration(self, field: str, bounds: tuple[timedelta, timedelta]) -> timedelta | None:
        value = self._spec.get(field)
        if value is None:
            return None
        if not isinstance(value, str) or not re.fullmatch(DURATION_PATTERN, value):
            raise self._fail(field, "is not a duration like 5m (digits, then s, m, h or d)")
        length = timedelta(seconds=int(value[:-1]) * _UNIT_SECONDS[value[-1]])
        if not bounds[0] <= length <= bounds[1]:
            raise self._fail(field, f"is out of range: give between {_text(bounds[0])} and {_text(bounds[1])}")
        return length

    def path(self, field: str, *, required: bool = False) -> str | None:
        value = self._spec.get(field)
        if value is None and not required:
            return None
        problem = path_problem(value)
        if problem:
            raise self._fail(field, problem)
        return normal_path(str(value))


def path_problem(value: object) -> str:
    """Why ``value`` is no path inside the repository ("" when it is one)."""
    if not isinstance(value, str) or not value:
        return "is not a path: give a folder of the repository, like teams/a"
    if len(value) > MAX_PATH_CHARS:
        return f"is longer than {MAX_PATH_CHARS} characters"
    if value.startswith("/"):
        return "is an absolute path: give it relative to the repository's top, like teams/a"
    if ".." in value.split("/"):
        return "leaves the repository (a '..' segment): give a folder inside it"
    if not re.fullmatch(PATH_PATTERN, value):
        return ("is not a plain path: letters, digits and . _ @ + ~ - in segments separated by single '/' (no "
                "spaces, backslashes, glob characters or empty segments)")  # fmt: skip
    return ""


def normal_path(path: str) -> str:
    """``./teams//a/`` and ``teams/a`` alike: the segments without ``.`` ("." for the repository's top)."""
    return "/".join(s for s in path.split("/") if s not in ("", ".")) or "."


def _depends_on(where: str, value: object, me: UnitRef) -> tuple[UnitRef, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_DEPENDS_ON:
        raise UnitError(f"{where}: spec.dependsOn: give a list of at most {MAX_DEPENDS_ON} {{name, namespace}}")
    refs: list[UnitRef] = []
    for index, item in enumerate(value):
        at = f"{where}: spec.dependsOn[{index}]"
        if not isinstance(item, Mapping) or set(item) - {"name", "namespace"}:
            raise UnitError(f"{at}: give a mapping of name and (optionally) namespace, nothing else")
        name, namespace = item.get("name"), item.get("namespace", me.namespace)
        if not is_dns_subdomain(name) or not is_dns_label(namespace):
            raise UnitError(f"{at}: {_shown(namespace)}/{_shown(name)} is not a valid Unit namespace and name")
        ref = UnitRef(str(namespace), str(name))
        if ref == me or ref in refs:
            raise UnitError(f"{at}: {ref} is {'the Unit itself' if ref == me else 'named twice'}")
        refs.append(ref)
    return tuple(refs)


def _wait(where: str, value: object) -> WaitSpec:
    if value is None:
        return WaitSpec()
    if not isinstance(value, Mapping) or set(value) - {"enabled", "cel"}:
        raise UnitError(f"{where}: spec.wait: give {{enabled: true|false, cel: [{{apiVersion, kind, expression}}]}}")
    if not isinstance(value.get("enabled", False), bool):
        raise UnitError(f"{where}: spec.wait: give {{enabled: true|false, cel: [{{apiVersion, kind, expression}}]}}")
    cel = value.get("cel") or []
    if not isinstance(cel, list) or len(cel) > MAX_CEL_CHECKS:
        raise UnitError(f"{where}: spec.wait.cel: give a list of at most {MAX_CEL_CHECKS} checks")
    return WaitSpec(bool(value.get("enabled", False)), tuple(_cel(f"{where}: spec.wait.cel[{i}]", c) for i, c in
                                                             enumerate(cel)))  # fmt: skip


def _cel(at: str, item: object) -> CelCheck:
    fields = ("apiVersion", "kind", "expression")
    if not isinstance(item, Mapping) or set(item) != set(fields):
        raise UnitError(f"{at}: give exactly apiVersion, kind and expression")
    api_version, kind, expression = (item[f] for f in fields)
    if not isinstance(api_version, str) or not re.fullmatch(r"([a-z0-9.-]{1,253}/)?v[0-9a-z]{1,20}", api_version):
        raise UnitError(f"{at}.apiVersion: {_shown(api_version)} is not an apiVersion like apps/v1")
    if not isinstance(kind, str) or not re.fullmatch(r"[A-Z][A-Za-z0-9]{0,62}", kind):
        raise UnitError(f"{at}.kind: {_shown(kind)} is not a kind like Certificate")
    if not isinstance(expression, str) or not expression.strip() or len(expression) > MAX_EXPRESSION_CHARS:
        raise UnitError(f"{at}.expression: give a CEL expression of at most {MAX_EXPRESSION_CHARS} characters")
    return CelCheck(api_version, kind, expression)


def _shown(value: object) -> str:
    """A hostile value as a short, one-line, ASCII quotation (its type when it is no scalar)."""
    if isinstance(value, Mapping | list):
        return f"a {type(value).__name__}"
    text = ascii(value) if not isinstance(value, str) else ascii(value)[1:-1]
    return f'"{text[:80]}{"..." if len(text) > 80 else ""}"'


def _text(length: timedelta) -> str:
    seconds = int(length.total_seconds())
    for suffix, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{suffix}"
    return f"{seconds}s"
