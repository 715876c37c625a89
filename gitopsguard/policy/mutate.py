"""Mutations, applied before validation as Kyverno does: add labels and annotations that are absent, and
set defaults where a field is absent. Never overwrites a value the author wrote. A default may copy one of
the object's own fields (``Copy``); when that field is absent the default is left out."""

from __future__ import annotations

import copy
from typing import Any

from gitopsguard.model import KubeObject
from gitopsguard.policy.model import Copy, Mutation

_UNRESOLVED = object()  # a Copy whose field the object does not have


def mutate(body: KubeObject, mutation: Mutation) -> KubeObject:
    """The mutated object; the same object when nothing changes (callers may rely on identity)."""
    metadata = body.get("metadata") or {}
    labels, annotations = metadata.get("labels") or {}, metadata.get("annotations") or {}
    new_labels = {k: v for k, v in mutation.add_labels.items() if k not in labels}
    new_annotations = {k: v for k, v in mutation.add_annotations.items() if k not in annotations}
    defaults = [
        (path, value)
        for kinds, path, template in mutation.defaults
        if (not kinds or body.get("kind") in kinds) and _absent(body, path)
        and (value := _resolved(template, body)) is not _UNRESOLVED
    ]  # fmt: skip
    if not (new_labels or new_annotations or defaults):
        return body
    result = copy.deepcopy(body)
    meta = result.setdefault("metadata", {})
    if new_labels:
        meta["labels"] = {**(meta.get("labels") or {}), **new_labels}
    if new_annotations:
        meta["annotations"] = {**(meta.get("annotations") or {}), **new_annotations}
    for path, value in defaults:
        _set(result, path, value)
    return result


def _absent(body: Any, path: tuple[str, ...]) -> bool:
    node = body
    for step in path:
        if not isinstance(node, dict):
            return False  # a parent is not a mapping: nothing sensible to default
        if step not in node or node[step] is None:
            return True
        node = node[step]
    return False


def _set(body: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = body
    for step in path[:-1]:
        if not isinstance(node.get(step), dict):
            node[step] = {}
        node = node[step]
    node[path[-1]] = value


def _resolved(template: Any, body: KubeObject) -> Any:
    """A fresh copy of ``template`` with each Copy replaced by the object's field; _UNRESOLVED when one of
    those fields is absent (or null): a default that would refer to nothing is not set."""
    if isinstance(template, Copy):
        found = _field(body, template.path)
        return _UNRESOLVED if found is None else copy.deepcopy(found)
    if isinstance(template, dict):
        items = {k: _resolved(v, body) for k, v in template.items()}
        return _UNRESOLVED if any(v is _UNRESOLVED for v in items.values()) else items
    if isinstance(template, list):
        values = [_resolved(v, body) for v in template]
        return _UNRESOLVED if any(v is _UNRESOLVED for v in values) else values
    return copy.deepcopy(template)


def _field(body: Any, path: tuple[str, ...]) -> Any:
    node = body
    for step in path:
        if not isinstance(node, dict):
            return None
        node = node.get(step)
    return node
