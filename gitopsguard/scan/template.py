"""What a controller's template would produce, to judge a child that claims it.

A child whose controller exists is judged through that controller, but only for what the controller put
there: a tenant may make a compliant DaemonSet and a privileged Pod that names it as controller, and a
DaemonSet keeps a Pod on no node as it is. So a child with findings is compared with the child its
controller's template would make: a finding the template would not produce (by policy, code, control and
field path) makes the child judged on its own, as a top-level workload.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gitopsguard.model import KubeObject
from gitopsguard.policy.model import Finding

_TEMPLATE_PATHS = {  # the controller's kind -> where it keeps the template of its children
    "Deployment": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate"),
}


def expected_child(owner: KubeObject, child: KubeObject) -> KubeObject:
    """The child ``owner``'s template would make, named and placed as ``child`` is. A Deployment's template
    becomes its ReplicaSets' template (and a CronJob's job template its Jobs' spec); every other template is
    a Pod's metadata and spec."""
    template = _dig(owner, _TEMPLATE_PATHS.get(str(owner.get("kind")), ("-",)))
    metadata, spec = _mapping(template.get("metadata")), _mapping(template.get("spec"))
    if owner.get("kind") == "Deployment":
        spec = {**_mapping(owner.get("spec")), "template": template}
        metadata = {**metadata, "annotations": _mapping(_mapping(owner.get("metadata")).get("annotations"))}
    mine = _mapping(child.get("metadata"))
    placed = {k: mine[k] for k in ("name", "namespace", "ownerReferences", "uid") if k in mine}
    return {"apiVersion": child.get("apiVersion"), "kind": child.get("kind"), "metadata": {**metadata, **placed},
            "spec": spec}  # fmt: skip


def beyond_template(own: Iterable[Finding], expected: Iterable[Finding]) -> tuple[Finding, ...]:
    """The child's findings its controller's template would not produce."""
    produced = {_identity(f) for f in expected}
    return tuple(f for f in own if _identity(f) not in produced)


def _identity(finding: Finding) -> tuple[str, str, str, str]:
    return finding.policy, finding.code, finding.control, finding.path


def _dig(node: Any, path: tuple[str, ...]) -> dict[str, Any]:
    for step in path:
        node = node.get(step) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
