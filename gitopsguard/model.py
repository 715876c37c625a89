"""Values that flow between the stages. Raw Kubernetes bodies stay plain dicts."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

KubeObject = dict[str, Any]
# The label on every object a unit applies: how prune, the live cache and the scan know what a unit owns.
UNIT_LABEL = "gitopsguard.io/unit"
# The apiVersion of gitopsguard's own files: policies, policy exceptions, grants and escalation policies.
API_VERSION = "gitopsguard.io/v1alpha1"
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: object) -> timedelta | None:
    """``90s``, ``30m``, ``2h``, ``1d`` as a timedelta; None when the text is not such a duration."""
    match = re.fullmatch(r"(\d+)([smhd])", str(text or "").strip())
    return timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]]) if match else None


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


class Action(StrEnum):
    CREATED = "created"
    CONFIGURED = "configured"
    UNCHANGED = "unchanged"
    DELETED = "deleted"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class Change:
    """What happened (or would happen) to one object, and why when that is not obvious."""

    key: ObjectKey
    action: Action
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.key} {self.action.value}" + (f": {self.detail}" if self.detail else "")
