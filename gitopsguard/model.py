"""Values that flow between the stages. Raw Kubernetes bodies stay plain dicts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

KubeObject = dict[str, Any]


@dataclass(frozen=True, order=True)
class ObjectKey:
    """What identifies one object in a cluster: API group, kind, namespace ("" when none given), name."""

    group: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> ObjectKey:
        api_version = str(body.get("apiVersion", ""))
        group = api_version.rpartition("/")[0]
        metadata = body.get("metadata") or {}
        return cls(group, str(body.get("kind", "")), str(metadata.get("namespace") or ""), str(metadata.get("name")))

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"


@dataclass(frozen=True, eq=False)
class Manifest:
    """One desired object and where it came from (a file, or a kustomization directory)."""

    key: ObjectKey
    body: KubeObject
    origin: str
