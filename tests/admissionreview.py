"""AdmissionReview requests as the API server sends them (admission.k8s.io/v1, Kubernetes API reference:
AdmissionReview, AdmissionRequest), and policy texts the admission tests share."""

from __future__ import annotations

import json
import uuid
from typing import Any

from gitopsguard.admission import AdmissionRequest, parse_review

KINDS = {  # kind -> (group, version, resource)
    "Pod": ("", "v1", "pods"),
    "Deployment": ("apps", "v1", "deployments"),
    "Job": ("batch", "v1", "jobs"),
    "CronJob": ("batch", "v1beta1", "cronjobs"),
    "Namespace": ("", "v1", "namespaces"),
    "Service": ("", "v1", "services"),
    "RoleBinding": ("rbac.authorization.k8s.io", "v1", "rolebindings"),
}


def review(body: dict[str, Any], *, operation: str = "CREATE", username: str = "alice", namespace: str | None = None,
           old: dict[str, Any] | None = None, dry_run: bool = False) -> dict[str, Any]:  # fmt: skip
    """The AdmissionReview the API server would send for ``body``."""
    kind = str(body.get("kind"))
    group, version, resource = KINDS[kind]
    metadata = body.get("metadata") or {}
    ns = metadata.get("namespace", "") if namespace is None else namespace
    request = {
        "uid": str(uuid.uuid4()),
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": resource},
        "requestKind": {"group": group, "version": version, "kind": kind},
        "name": metadata.get("name", ""),
        "namespace": "" if kind == "Namespace" else ns,
        "operation": operation,
        "userInfo": {"username": username, "uid": "u-1", "groups": ["system:authenticated"]},
        "object": body if operation != "DELETE" else None,
        "oldObject": old,
        "dryRun": dry_run,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    }
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def request_of(body: dict[str, Any], **options: Any) -> AdmissionRequest:
    return parse_review(json.dumps(review(body, **options)).encode())


POLICY = "apiVersion: gitopsguard.io/v1alpha1\nkind: Policy\n"
BASELINE = (
    POLICY
    + """metadata: {name: pod-security}
spec:
  builtin: pss-baseline
  severity: HIGH
  enforcement: enforce
  match: {kinds: [Pod, Deployment, Job]}
"""
)
MAGTAPE = (
    POLICY
    + """metadata: {name: magtape}
spec:
  builtin: magtape
  severity: LOW
  enforcement: audit
  match: {kinds: [Pod, Deployment]}
"""
)
TTL = (
    POLICY
    + """metadata: {name: add-ttl-jobs}
spec:
  match: {kinds: [Job]}
  mutate:
    setDefaults: [{kinds: [Job], path: spec.ttlSecondsAfterFinished, value: 90}]
"""
)
TEAM_LABEL = (
    POLICY
    + """metadata: {name: team-label}
spec:
  match: {kinds: [Deployment, Job]}
  mutate: {addLabels: {app.kubernetes.io/managed-by: gitopsguard, team: unknown}}
"""
)


def exception(namespace: str, expires: str) -> str:
    return f"""apiVersion: gitopsguard.io/v1alpha1
kind: PolicyException
metadata: {{name: legacy-agent}}
spec:
  policies: [pod-security]
  match: {{namespaces: [{namespace}], names: [legacy-agent]}}
  reason: the node agent needs the host PID namespace until its rewrite (TICKET-42)
  expires: {expires}
"""


def hack_a_node_pod(namespace: str, name: str = "my-pod") -> dict[str, Any]:
    """The issue's "hack a node" Pod: host PID and network, privileged, nsenter into PID 1."""
    container = {
        "name": "nsenter",
        "image": "alpine",
        "securityContext": {"privileged": True},
        "command": ["nsenter", "--target", "1", "--mount", "--uts", "--ipc", "--net", "--pid", "bash", "-l"],
    }
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"hostPID": True, "hostNetwork": True, "containers": [container]}}  # fmt: skip
