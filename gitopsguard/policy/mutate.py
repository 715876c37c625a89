"""Mutations, applied before validation as Kyverno does: add labels and annotations that are absent, and
set defaults where a field is absent. Never overwrites a value the author wrote."""

from __future__ import annotations

import copy
from typing import Any

from gitopsguard.model import KubeObject
from gitopsguard.policy.model import Mutation


def mutate(body: KubeObject, mutation: Mutation) -> KubeObject:
    """The mutated object; the same object when nothing changes (callers may rely on identity)."""
    metadata = body.get("metadata") or {}
    labels, annotations = metadata.get("labels") or {}, metadata.get("annotations") or {}
    new_labels = {k: v for k, v in mutation.add_labels.items() if k not in labels}
    new_annotations = {k: v for k, v in mutation.add_annotations.items() if k not in annotations}
    defaults = [
        (path, value)
        for kinds, path, value in mutation.defaults
        if (not kinds or body.get("kind") in kinds) and _absent(body, path)
    ]
    if not (new_labels or new_annotations or defaults):
        return body
    result = copy.deepcopy(body)
    meta = result.setdefault("metadata", {})
    if new_labels:
        meta["labels"] = {**(meta.get("labels") or {}), **new_labels}
    if new_annotations:
        meta["annotations"] = {**(meta.get("annotations") or {}), **new_annotations}
    for path, value in defaults:
        _set(result, path, copy.deepcopy(value))
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
