"""Pod specs wrapped as a Pod, a Deployment and a CronJob, so each check is tried on all three shapes."""

from __future__ import annotations

import copy
from typing import Any

RESTRICTED_CONTAINER: dict[str, Any] = {
    "name": "app",
    "image": "registry.example/app:1.0",
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    },
    "resources": {"limits": {"cpu": "1", "memory": "128Mi"}, "requests": {"cpu": "100m", "memory": "64Mi"}},
    "livenessProbe": {"httpGet": {"path": "/", "port": 8080}},
    "readinessProbe": {"httpGet": {"path": "/", "port": 8080}},
}


def compliant_spec() -> dict[str, Any]:
    """A pod spec that passes every PSS restricted control and every MagTape container check."""
    return {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [copy.deepcopy(RESTRICTED_CONTAINER)],
        "volumes": [{"name": "cache", "emptyDir": {"sizeLimit": "64Mi"}}, {"name": "cfg", "configMap": {"name": "c"}}],
    }


def as_pod(spec: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    owner = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "1", "controller": True}]
    metadata = {"name": "p", "namespace": "team", "ownerReferences": owner, "annotations": annotations or {}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def as_deployment(spec: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    template = {"metadata": {"labels": {"app": "a"}, "annotations": annotations or {}}, "spec": spec}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "team"},
            "spec": {"selector": {"matchLabels": {"app": "a"}}, "template": template}}  # fmt: skip


def as_cronjob(spec: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    template = {"metadata": {"annotations": annotations or {}}, "spec": {**spec, "restartPolicy": "Never"}}
    return {"apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": "c", "namespace": "team"},
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}}  # fmt: skip


SHAPES = {"Pod": as_pod, "Deployment": as_deployment, "CronJob": as_cronjob}
