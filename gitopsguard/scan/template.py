"""Which of a child's findings its controller answers for, to judge a child that claims one.

A child whose controller exists is judged through that controller, but only for what the controller is
itself judged for: a tenant may make a DaemonSet and a privileged Pod that names it as controller, may name
a DaemonSet an exception covers (for its hostPath /var/log) from a Pod mounting the node's /, and a policy
may match Pods only, never the DaemonSet. So the child is judged as a top-level object (its own kind, labels
and exceptions), and a finding is excused only when the controller's own standing findings (not excepted,
within the same policy's scope) hold the same finding: policy, code, severity and message, at the place its
template keeps that field, with the same value there. Anything else makes the child judged on its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from gitopsguard.model import KubeObject
from gitopsguard.policy.model import Finding

_ROOTS = {  # kind -> where it keeps the Pod (or, for a Job, the Job) its controller's template makes
    "Pod": (),
    "Deployment": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
_OUTSIDE = {  # (child kind, controller kind) -> where the controller keeps the child's own metadata and spec
    ("ReplicaSet", "Deployment"): (),
    ("Job", "CronJob"): ("spec", "jobTemplate"),
}
_STEP = re.compile(r"\[(\d+)\]$")
_ABSENT = object()  # a path that leads nowhere: the same on both sides only when both lack the field


def beyond_controller(
    child: KubeObject, own: Iterable[Finding], owner: KubeObject, owners: Iterable[Finding]
) -> tuple[Finding, ...]:
    """The child's standing findings (``own``) its controller's standing findings (``owners``) do not hold
    with the same policy, code, severity and message at the matching path, with the same value there."""
    held = {(f.policy, f.code, f.severity, f.message, f.path) for f in owners}
    return tuple(f for f in own if not _answered(child, f, owner, held))


def _answered(child: KubeObject, finding: Finding, owner: KubeObject, held: set[tuple[Any, ...]]) -> bool:
    path = owner_path(str(child.get("kind")), str(owner.get("kind")), finding.path)
    if path is None or (finding.policy, finding.code, finding.severity, finding.message, path) not in held:
        return False
    return bool(_value(child, finding.path) == _value(owner, path))


def owner_path(child_kind: str, owner_kind: str, path: str) -> str | None:
    """Where ``owner`` keeps the field at ``path`` of its child; None when its template does not hold it (a
    finding there is the child's own)."""
    child_root, root = _ROOTS.get(child_kind), _ROOTS.get(owner_kind)
    if child_root is None or root is None:
        return None
    prefix = ".".join(child_root)
    if prefix and path != prefix and not path.startswith(prefix + "."):
        outside = _OUTSIDE.get((child_kind, owner_kind))
        return None if outside is None else ".".join((*outside, path))
    rest = path[len(prefix) :].lstrip(".")
    return ".".join((*root, rest)) if rest else ".".join(root)


def _value(body: Any, path: str) -> Any:
    """The subtree at a finding's path; keys holding dots (labels like app.kubernetes.io/name) are found by
    joining parts, so that both sides are read alike."""
    node, parts = body, path.split(".") if path else []
    while parts:
        if not isinstance(node, dict):
            return _ABSENT
        size = next((n for n in range(len(parts), 0, -1) if _key(".".join(parts[:n])) in node), 1)
        key, parts = ".".join(parts[:size]), parts[size:]
        node = _index(node.get(_key(key), _ABSENT), key)
    return node


def _key(part: str) -> str:
    return _STEP.sub("", part)


def _index(node: Any, part: str) -> Any:
    for index in re.findall(r"\[(\d+)\]", part):
        node = node[int(index)] if isinstance(node, list) and int(index) < len(node) else _ABSENT
    return node
