"""Where a pod spec lives in each workload kind, and every container in it with its field path."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gitopsguard.model import KubeObject

POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
WORKLOAD_KINDS = frozenset(POD_SPEC_PATHS)
CONTAINER_FIELDS = ("containers", "initContainers", "ephemeralContainers")


def pod_spec(body: KubeObject) -> tuple[str, dict[str, Any]] | None:
    """(field path, pod spec) of a Pod or a workload's pod template; None for other kinds."""
    path = POD_SPEC_PATHS.get(str(body.get("kind")))
    if path is None:
        return None
    node: Any = body
    for step in path:
        node = node.get(step) if isinstance(node, dict) else None
    return ".".join(path), node if isinstance(node, dict) else {}


def pod_metadata(body: KubeObject) -> dict[str, Any]:
    """The metadata that holds a pod's annotations: the Pod's own, or its template's."""
    path = POD_SPEC_PATHS.get(str(body.get("kind")))
    if path is None:
        return {}
    node: Any = body
    for step in path[:-1]:
        node = node.get(step) if isinstance(node, dict) else None
    metadata = node.get("metadata") if isinstance(node, dict) else None
    return metadata if isinstance(metadata, dict) else {}


def containers(
    spec_path: str, spec: dict[str, Any], fields: tuple[str, ...] = CONTAINER_FIELDS
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(field path, container) for each container of the chosen lists."""
    for list_field in fields:
        for index, container in enumerate(spec.get(list_field) or []):
            if isinstance(container, dict):
                yield f"{spec_path}.{list_field}[{index}]", container


def dig(node: Any, *steps: str) -> Any:
    """The value at ``steps`` below ``node``, or None where any step is missing."""
    for step in steps:
        if not isinstance(node, dict):
            return None
        node = node.get(step)
    return node


@dataclass(frozen=True)
class PodView:
    """A pod spec located once, with every container, for the checks that all walk the same lists."""

    body: KubeObject
    spec_path: str
    spec: dict[str, Any]
    boxes: tuple[tuple[str, str, dict[str, Any]], ...]  # (list field, field path, container)

    def containers(self, *fields: str) -> list[tuple[str, dict[str, Any]]]:
        wanted = fields or CONTAINER_FIELDS
        return [(path, container) for field, path, container in self.boxes if field in wanted]


_last: tuple[KubeObject | None, PodView | None] = (None, None)


def view(body: KubeObject) -> PodView | None:
    """The pod view of a Pod or workload, None for other kinds; the last one is kept, as every check of one
    object asks for it in turn."""
    global _last  # a one-entry memo; a stale read is only a miss
    cached_body, cached = _last
    if cached_body is body:
        return cached
    located = pod_spec(body)
    result = None
    if located is not None:
        spec_path, spec = located
        boxes = tuple((field, f"{spec_path}.{field}[{i}]", c) for field in CONTAINER_FIELDS
                      for i, c in enumerate(spec.get(field) or []) if isinstance(c, dict))  # fmt: skip
        result = PodView(body, spec_path, spec, boxes)
    _last = (body, result)
    return result
