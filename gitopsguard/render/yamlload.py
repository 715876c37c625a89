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
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.resolver import BaseResolver

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


class _ManifestLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe loader, with timestamps kept as text and the tags that have no JSON form refused."""

    def construct_no_json(self, node: yaml.Node) -> None:
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.tag} has no JSON form; a Kubernetes manifest cannot hold it", node.start_mark
        )


_ManifestLoader.add_constructor(_TIMESTAMP, SafeConstructor.construct_yaml_str)
_ManifestLoader.add_constructor("tag:yaml.org,2002:binary", _ManifestLoader.construct_no_json)
_ManifestLoader.add_constructor("tag:yaml.org,2002:set", _ManifestLoader.construct_no_json)


class _Unusual(Exception):  # noqa: N818  (not an error: the signal to take the safe loader's path)
    pass


def documents(text: str) -> Iterator[tuple[int, Any]]:
    """(line the document starts on, its value) for each document; raises yaml.YAMLError like safe_load."""
    if not HAVE_LIBYAML:
        yield from _safe_documents(text)
        return
    loader = _FastLoader(text)
    count = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            try:
                value = _build(loader, node)
            except (_Unusual, RecursionError, TypeError, yaml.YAMLError):
                remaining = _safe_documents(text)
                for _ in range(count):
                    next(remaining)
                yield from remaining
                return
            count += 1
            yield node.start_mark.line + 1, value
    finally:
        loader.dispose()


def _safe_documents(text: str) -> Iterator[tuple[int, Any]]:
    return each_document(_ManifestLoader(text))


def each_document(loader: Any) -> Iterator[tuple[int, Any]]:
    """(line the document starts on, its value) from any PyYAML loader, disposed of at the end."""
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
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


def _build(loader: _FastLoader, node: yaml.Node) -> Any:
    tag = node.tag
    if tag == _PLAIN:
        return _plain(loader, node)
    if tag == _STR:
        return node.value
    if tag == _MAP:
        result = {}
        for key, value in node.value:
            if key.tag not in (_PLAIN, _STR):
                raise _Unusual
            built = _plain(loader, key) if key.tag == _PLAIN else key.value
            if built is _MERGE:
                raise _Unusual
            result[built] = _build(loader, value)
        return result
    if tag == _SEQ:
        return [_build(loader, item) for item in node.value]
    raise _Unusual  # an explicit tag


_MERGE = object()


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
            return _CONSTRUCTORS[tag](loader, yaml.ScalarNode(tag, value, node.start_mark, node.end_mark))
    return value
