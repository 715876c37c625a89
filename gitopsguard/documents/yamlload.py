"""Loading YAML documents fast, with the values kubectl and kustomize read from a manifest.

Those are ``yaml.safe_load``'s values with one difference: a plain scalar that looks like a timestamp
(``2026-01-01``) stays the text it is, as Go's YAML reader keeps it, so that it is sent as written (a
``datetime`` is not JSON at all). ``!!binary`` and ``!!set`` have no JSON form and are refused with the
line they are on.

libyaml's loader still resolves every scalar and builds every value in Python; on 5,000 manifests that was
2.8 s. Here libyaml only marks which scalars were plain, and the common values (strings, mappings, lists)
are built directly; a plain scalar is resolved with the safe loader's own rules and constructors, only
when its first character could start a non-string. A document with anything unusual (explicit tags,
merge keys, keys that are not scalars) is loaded by the safe loader itself, with the same difference.

Every loader here keeps the bounds of ``bounds.py`` (aliases counted as what they repeat, nodes, depth,
documents, numbers); ``load_bounded``/``parse_bounded`` are the one way for other loaders (grant files,
the trust configuration) to read YAML within them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.resolver import BaseResolver

from gitopsguard.documents.bounds import (
    Budget,
    LimitError,
    construct_int,
    guard_scalars,
    guarded,
    require_composable,
    yaml_errors_only,
)
from gitopsguard.documents.files import read_bounded
from gitopsguard.documents.limits import LIMITS, ReadLimits
from gitopsguard.errors import GitOpsGuardError

try:
    from yaml._yaml import CParser

    HAVE_LIBYAML = True
except ImportError:  # PyYAML built without libyaml: every document takes the safe loader's path
    CParser, HAVE_LIBYAML = object, False  # type: ignore[assignment, misc]

_STR, _MAP, _SEQ = "tag:yaml.org,2002:str", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"
_PLAIN = "gitopsguard:plain"  # a plain scalar whose type the safe loader's rules decide
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_IMPLICIT = yaml.SafeLoader.yaml_implicit_resolvers
_CONSTRUCTORS = SafeConstructor.yaml_constructors
_INT = "tag:yaml.org,2002:int"


class _ManifestLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe loader, with timestamps kept as text and the tags that have no JSON form refused."""

    def construct_no_json(self, node: yaml.Node) -> None:
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.tag} has no JSON form; a Kubernetes manifest cannot hold it", node.start_mark
        )


_ManifestLoader.add_constructor(_TIMESTAMP, SafeConstructor.construct_yaml_str)
_ManifestLoader.add_constructor("tag:yaml.org,2002:binary", _ManifestLoader.construct_no_json)
_ManifestLoader.add_constructor("tag:yaml.org,2002:set", _ManifestLoader.construct_no_json)
_ManifestLoader.add_constructor(_INT, construct_int)

guard_scalars(_ManifestLoader)


class _Unusual(Exception):  # noqa: N818  (not an error: the signal to take the safe loader's path)
    pass


def documents(text: str, budget: Budget | None = None, *, settings: ReadLimits = LIMITS) -> Iterator[tuple[int, Any]]:
    """(line the document starts on, its value) for each document; raises yaml.YAMLError like safe_load, and
    LimitError past the bounds of ``budget`` (a new one of ``settings`` when none is given)."""
    return yaml_errors_only(_documents(text, budget or Budget(settings)))


def _documents(text: str, budget: Budget) -> Iterator[tuple[int, Any]]:
    require_composable(text, budget)
    if not HAVE_LIBYAML:
        yield from _safe_documents(text, budget)
        return
    # Without an anchor (no `&` anywhere) no node is shared, so the nodes are counted as they are built, at
    # no extra cost; a text with one is measured document by document before anything is built from it.
    anchored = "&" in text
    counter = Budget(replace(budget.settings, max_nodes=sys.maxsize)) if anchored else budget
    loader = _FastLoader(text)
    count = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            budget.spend(node) if anchored else budget.count_document(node)
            try:
                value = _build(loader, node, counter, 1)
            except (_Unusual, TypeError, yaml.constructor.ConstructorError):
                if not anchored:
                    budget.measure(node)
                yield from _safe_documents(text, budget, skip=count + 1, again=node)
                return
            count += 1
            yield node.start_mark.line + 1, value
    finally:
        loader.dispose()


def _safe_documents(
    text: str, budget: Budget, skip: int = 0, again: yaml.Node | None = None
) -> Iterator[tuple[int, Any]]:
    """The safe loader's documents from the ``skip``-th on (1-based); ``again`` is the one already counted."""
    loader = _ManifestLoader(text)
    try:
        for _ in range(max(skip - 1, 0)):
            loader.get_node()
        if again is not None and loader.check_node():
            node = loader.get_node()
            yield node.start_mark.line + 1, loader.construct_document(node)
        yield from each_document(loader, budget)
    finally:
        loader.dispose()


def each_document(loader: Any, budget: Budget | None = None) -> Iterator[tuple[int, Any]]:
    """(line the document starts on, its value) from any PyYAML loader, each document measured against
    ``budget`` before it is built; the loader is disposed of at the end."""
    budget = budget or Budget()
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                budget.spend(node)
                yield node.start_mark.line + 1, loader.construct_document(node)
    finally:
        loader.dispose()


class _FastLoader(CParser, SafeConstructor, BaseResolver):
    def __init__(self, stream: str) -> None:
        CParser.__init__(self, stream)
        SafeConstructor.__init__(self)
        BaseResolver.__init__(self)

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode:
            return _PLAIN if implicit[0] else _STR
        return _MAP if kind is yaml.MappingNode else _SEQ

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass


def _build(loader: _FastLoader, node: yaml.Node, budget: Budget, depth: int) -> Any:
    budget.nodes -= 1
    if budget.nodes < 0:
        raise budget.too_many(node)
    tag = node.tag
    if tag == _PLAIN:
        return _plain(loader, node)
    if tag == _STR:
        return node.value
    if depth > budget.settings.max_depth:
        raise budget.too_deep(node)
    if tag == _MAP:
        result = {}
        budget.nodes -= len(node.value)  # the keys
        for key, value in node.value:
            if key.tag not in (_PLAIN, _STR):
                raise _Unusual
            built = _plain(loader, key) if key.tag == _PLAIN else key.value
            if built is _MERGE:
                raise _Unusual
            result[built] = _build(loader, value, budget, depth + 1)
        return result
    if tag == _SEQ:
        return [_build(loader, item, budget, depth + 1) for item in node.value]
    raise _Unusual  # an explicit tag


_MERGE = object()


_FAST_CONSTRUCTORS = {tag: guarded(construct) for tag, construct in _CONSTRUCTORS.items()} | {
    _INT: guarded(construct_int)
}


def _plain(loader: _FastLoader, node: yaml.Node) -> Any:
    value = node.value
    for tag, pattern in _IMPLICIT.get(value[:1] if value else "", ()):
        if pattern.match(value):
            if tag == "tag:yaml.org,2002:merge":
                return _MERGE
            if tag == _TIMESTAMP:
                return value
            if tag not in _CONSTRUCTORS:
                raise _Unusual
            scalar = yaml.ScalarNode(tag, value, node.start_mark, node.end_mark)
            return _FAST_CONSTRUCTORS[tag](loader, scalar)
    return value


def parse_bounded(
    text: str, shown: str, error: type[GitOpsGuardError], budget: Budget | None = None
) -> list[tuple[int, Any]]:
    """The documents of a YAML text from Git or the operator as (line, value), within ``budget`` (the render's
    default bounds when none is given): aliases counted as what they repeat, nodes, depth, documents, numbers.
    Raises ``error`` with a message that starts ``shown:line:``, for bad YAML and for every bound passed."""
    try:
        return list(documents(text, budget))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = e.problem if isinstance(e, LimitError) else f"not valid YAML: {e.problem or e.context}"
        raise error(f"{shown}:{mark.line + 1 if mark else 1}: {problem}") from e
    except yaml.YAMLError as e:
        raise error(f"{shown}: not valid YAML: {e}") from e


def load_bounded(
    path: Path, error: type[GitOpsGuardError], *, shown: str | None = None, settings: ReadLimits = LIMITS
) -> list[tuple[int, Any]]:
    """The one bounded way to read a YAML file that a commit or an operator wrote (grant files, escalation
    policies, the trust configuration): (line, value) for each document, values as kubectl reads them.

    The file is refused before it is read when it is a symlink or bigger than ``settings.max_file_bytes``,
    and its YAML past any of the bounds of ``parse_bounded``. Raises ``error`` (PolicyError for access files,
    GitOpsGuardError for the trust configuration, ...) with a message that starts with ``shown`` (default:
    the path) and the line, and says what to do; never a library error."""
    name = shown or str(path)
    text = read_bounded(path, path.parent, error, settings, shown=name)
    return parse_bounded(text, name, error, Budget(settings))
