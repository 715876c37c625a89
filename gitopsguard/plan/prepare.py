"""Turning rendered manifests into the exact bodies gitopsguard applies (pure)."""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from gitopsguard.model import UNIT_LABEL, KubeObject, Manifest, ObjectKey
from gitopsguard.plan.diff import digest

PRUNE_MARKER = "gitopsguard.io/prune"
FIRST_KINDS = frozenset({("apiextensions.k8s.io", "CustomResourceDefinition"), ("", "Namespace")})


@dataclass(frozen=True, eq=False)
class Desired:
    key: ObjectKey
    body: KubeObject
    origin: str
    api_version: str
    stage: int  # 0: CRDs and Namespaces, 1: other cluster-scoped objects, 2: namespaced objects

    @cached_property
    def digest(self) -> str:
        """A short, stable fingerprint of the body, to notice when Git changed it."""
        return digest(self.body)

    @cached_property
    def payload(self) -> bytes:
        """The body as compact JSON, encoded once for the dry run and the apply."""
        return json.dumps(self.body, separators=(",", ":")).encode()


# The run loop prepares the same rendered manifests on every pass of a commit (each drift repair, each
# pass after a status update); keeping each manifest's prepared form, with its digest and payload, for as
# long as the manifest lives saves copying, encoding and hashing every body again (0.1-0.2 s at 2,020).
_PREPARED: weakref.WeakKeyDictionary[Manifest, tuple[tuple[str, str, bool], Desired]] = weakref.WeakKeyDictionary()


def prepare(
    manifests: tuple[Manifest, ...], *, unit: str, default_namespace: str, namespaced: Callable[[Manifest], bool]
) -> list[Desired]:
    """Bodies with our ownership label, a namespace exactly where the kind has one, and 1.20's defaults."""
    desired = []
    for manifest in manifests:
        how = (unit, default_namespace, namespaced(manifest))
        known = _PREPARED.get(manifest)
        if known is None or known[0] != how:
            known = how, _prepared(manifest, *how)
            _PREPARED[manifest] = known
        desired.append(known[1])
    return desired


def _prepared(manifest: Manifest, unit: str, default_namespace: str, namespaced: bool) -> Desired:
    body = _copied(manifest.body)
    metadata = body.setdefault("metadata", {})
    metadata.setdefault("labels", {})[UNIT_LABEL] = unit
    if namespaced:
        metadata["namespace"] = metadata.get("namespace") or default_namespace
    else:
        metadata.pop("namespace", None)
    key = placed_key(manifest, default_namespace, namespaced)
    return Desired(key, body, manifest.origin, str(body["apiVersion"]), _stage(key))


def placed_key(manifest: Manifest, default_namespace: str, namespaced: bool) -> ObjectKey:
    """The key of the body ``prepare`` makes: the manifest's namespace, else the default, where the kind
    has one; none where it has not."""
    key = ObjectKey.of(manifest.body)  # not manifest.key: a mutation may have changed the body since
    namespace = (key.namespace or default_namespace) if namespaced else ""
    return key if namespace == key.namespace else ObjectKey(key.group, key.kind, namespace, key.name)


Placement = tuple[str, Callable[[Manifest], bool]]  # (default namespace, whether a manifest's kind has one)


def placements(default_namespace: str, namespaced: Callable[[Manifest], bool]) -> tuple[Placement, Placement]:
    """Where ``prepare`` puts each of ``split_first``'s two stages: CRDs and Namespaces in no namespace;
    the rest in their own, else the default, where their kind has one."""
    return ("", _cluster_scoped), (default_namespace, namespaced)


def _cluster_scoped(_: Manifest) -> bool:
    return False


def split_first(manifests: Sequence[Manifest]) -> tuple[tuple[Manifest, ...], tuple[Manifest, ...]]:
    """(CRDs and Namespaces, everything else): the first must exist before the rest can be checked."""
    first = tuple(m for m in manifests if (m.key.group, m.key.kind) in FIRST_KINDS)
    return first, tuple(m for m in manifests if (m.key.group, m.key.kind) not in FIRST_KINDS)


# Within a stage, what other objects refer to goes first, so that a workload finds its ConfigMaps,
# Secrets, ServiceAccount and permissions when it starts (the order Helm and kustomize use); kinds not
# listed come last. There is no barrier between kinds: requests simply go out in this order.
# fmt: off
APPLY_ORDER = (
    "ResourceQuota", "LimitRange", "PriorityClass", "PodSecurityPolicy", "PodDisruptionBudget", "ServiceAccount",
    "Secret", "ConfigMap", "StorageClass", "PersistentVolume", "PersistentVolumeClaim", "ClusterRole",
    "ClusterRoleBinding", "Role", "RoleBinding", "Service", "DaemonSet", "Pod", "ReplicationController",
    "ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass",
    "Ingress", "NetworkPolicy", "APIService",
)
# fmt: on
_RANK = {kind: rank for rank, kind in enumerate(APPLY_ORDER)}


def in_apply_order(desired: Sequence[Desired]) -> list[Desired]:
    """The objects sorted by kind as above, keeping Git's order within a kind."""
    return sorted(desired, key=lambda d: _RANK.get(d.key.kind, len(APPLY_ORDER)))


def _stage(key: ObjectKey) -> int:
    if (key.group, key.kind) in FIRST_KINDS:
        return 0
    return 1 if not key.namespace else 2


def _copied(node: Any, port_entry: bool = False) -> Any:
    """A deep copy of a manifest's JSON-like body, with 1.20's port defaults: Kubernetes 1.20 refuses
    server-side apply of a port list entry without ``protocol``; newer servers default it to TCP."""
    if isinstance(node, list):
        return [_copied(item) for item in node]
    if not isinstance(node, dict):
        return node
    copy = {
        key: [_copied(item, True) for item in value] if key == "ports" and isinstance(value, list) else _copied(value)
        for key, value in node.items()
    }
    if port_entry and ("port" in copy or "containerPort" in copy):
        copy.setdefault("protocol", "TCP")
    return copy


def prune_disabled(body: KubeObject) -> bool:
    metadata = body.get("metadata") or {}
    marks = {**(metadata.get("labels") or {}), **(metadata.get("annotations") or {})}
    return marks.get(PRUNE_MARKER) == "disabled"
