"""The mutating webhook's answer: the policies' mutations as RFC 6902 JSON Patch operations.

Each mutating policy is applied in turn with the gate's own ``mutate`` (add-if-absent, never overwriting
what the author wrote), and the operations that turn one step into the next are appended: the same order
and the same result as the gate's. ``mutate`` only adds keys, fills keys that are null, and creates missing
parent mappings, so "add" (and "replace" for a null) are the only operations needed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gitopsguard.model import KubeObject
from gitopsguard.policy.model import Policy
from gitopsguard.policy.mutate import mutate

Operation = dict[str, Any]


def mutations(body: KubeObject, policies: Iterable[Policy]) -> tuple[KubeObject, tuple[Operation, ...]]:
    """(the mutated body, the operations that make it from ``body``), in policy order."""
    operations: list[Operation] = []
    for policy in policies:
        if policy.mutation is None or not policy.applies_to(body):
            continue
        mutated = mutate(body, policy.mutation)
        if mutated is not body:
            operations.extend(difference(body, mutated))
            body = mutated
    return body, tuple(operations)


def difference(before: Any, after: Any, path: str = "") -> list[Operation]:
    """Operations that turn ``before`` into ``after`` where ``after`` only adds to it (see module doc)."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return [] if before == after else [{"op": "replace", "path": path or "/", "value": after}]
    operations: list[Operation] = []
    for key, value in after.items():
        where = f"{path}/{pointer(key)}"
        if key not in before:
            operations.append({"op": "add", "path": where, "value": value})
        elif before[key] is None and value is not None:
            operations.append({"op": "replace", "path": where, "value": value})
        else:
            operations.extend(difference(before[key], value, where))
    return operations


def pointer(key: str) -> str:
    """One RFC 6901 reference token: label keys hold "/" (app.kubernetes.io/name)."""
    return str(key).replace("~", "~0").replace("/", "~1")
