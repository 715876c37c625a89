"""The ValidatingWebhookConfiguration and MutatingWebhookConfiguration (admissionregistration.k8s.io/v1,
served since Kubernetes 1.16) that send the API server's requests to gitopsguard.

Each has two webhooks:

- ``objects.gitopsguard.io``: every kind the policies target except Namespaces. Not called for the
  controller's namespace and kube-system (so a broken webhook cannot block their repair), nor for a
  namespace labelled ``gitopsguard.io/admission: disabled`` (break glass).
- ``namespaces.gitopsguard.io``: Namespaces themselves, break-glass ones included, so that switching break
  glass on or off is seen (and audited with who did it) and Namespace policies still hold.

Namespaces are told apart by the ``kubernetes.io/metadata.name`` label, which API servers from 1.21 set
themselves; on older ones ``label_system_namespaces`` sets it on the two exempt namespaces. On those older
servers whoever may label a Namespace may also claim that label, which is no more than the break-glass label
already lets them do (and the switch is audited): namespace labels are an administrator's power.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from gitopsguard.admission.review import BREAK_GLASS
from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import AdmissionError, ClusterError, ConflictError, NotFoundError, UnreachableError
from gitopsguard.policy import PolicySet

API = "/apis/admissionregistration.k8s.io/v1"
NAME_LABEL = "kubernetes.io/metadata.name"
EXEMPT_NAMESPACES = ("gitopsguard-system", "kube-system")
SERVICE = "gitopsguard-webhook"

# kind -> (API group, resource); the kinds gitopsguard can judge at admission
RESOURCES: dict[str, tuple[str, str]] = {
    "Pod": ("", "pods"),
    "ReplicationController": ("", "replicationcontrollers"),
    "Service": ("", "services"),
    "ServiceAccount": ("", "serviceaccounts"),
    "ConfigMap": ("", "configmaps"),
    "PersistentVolumeClaim": ("", "persistentvolumeclaims"),
    "Secret": ("", "secrets"),
    "Deployment": ("apps", "deployments"),
    "StatefulSet": ("apps", "statefulsets"),
    "DaemonSet": ("apps", "daemonsets"),
    "ReplicaSet": ("apps", "replicasets"),
    "Job": ("batch", "jobs"),
    "CronJob": ("batch", "cronjobs"),
    "PodDisruptionBudget": ("policy", "poddisruptionbudgets"),
    "Ingress": ("networking.k8s.io", "ingresses"),
    "NetworkPolicy": ("networking.k8s.io", "networkpolicies"),
    "Role": ("rbac.authorization.k8s.io", "roles"),
    "ClusterRole": ("rbac.authorization.k8s.io", "clusterroles"),
    "RoleBinding": ("rbac.authorization.k8s.io", "rolebindings"),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io", "clusterrolebindings"),
    "Namespace": ("", "namespaces"),
}
# What a policy matching every kind brings under admission: Secrets only when a policy names them, so that
# their values are not sent to the webhook for nothing.
EVERY_KIND = frozenset(RESOURCES) - {"Secret"}


class FailurePolicy(StrEnum):
    FAIL = "Fail"  # the webhook unreachable or failing: the request is denied (fail closed, the default)
    IGNORE = "Ignore"  # ... the request is admitted unjudged


@dataclass(frozen=True)
class WebhookSettings:
    name: str = "gitopsguard"  # of both configurations
    url: str = ""  # how the API server reaches us; "" for the Service in ``namespace``
    namespace: str = "gitopsguard-system"
    port: int = 443
    failure_policy: FailurePolicy = FailurePolicy.FAIL
    timeout_seconds: int = 5
    # further namespaceSelector terms, ANDed (tests scope a configuration to their own namespaces with these)
    also_match: tuple[Mapping[str, Any], ...] = ()
    always: frozenset[str] = field(default_factory=frozenset)  # kinds judged whatever the policies target


def kinds_for(policies: PolicySet, always: Iterable[str] = ()) -> tuple[frozenset[str], frozenset[str]]:
    """(kinds to send to the webhooks, kinds the policies name that admission cannot cover)."""
    wanted = set(always)
    for policy in policies.policies:
        wanted |= policy.match.kinds or EVERY_KIND
    return frozenset(wanted & set(RESOURCES)), frozenset(wanted - set(RESOURCES))


def mutated_kinds(policies: PolicySet) -> frozenset[str]:
    """The kinds some policy mutates: the only ones the mutating webhook needs (each call costs the API
    server a round trip, and a new TLS connection when its pool of idle ones is spent)."""
    mutating = PolicySet(tuple(p for p in policies.policies if p.mutation is not None))
    return kinds_for(mutating)[0]


def configurations(
    settings: WebhookSettings, kinds: frozenset[str], ca_bundle: bytes, mutated: frozenset[str] | None = None
) -> list[dict[str, Any]]:
    """The validating configuration for ``kinds`` and the mutating one for ``mutated`` (the same kinds when
    None), as bodies to write."""
    bundle = base64.b64encode(ca_bundle).decode()
    found = []
    for kind, path in (("ValidatingWebhookConfiguration", "validate"), ("MutatingWebhookConfiguration", "mutate")):
        if path == "mutate" and mutated is not None:
            kinds = mutated
        hooks = [_webhook("objects.gitopsguard.io", sorted(kinds - {"Namespace"}), path, settings, bundle, True)]
        if "Namespace" in kinds:
            hooks.append(_webhook("namespaces.gitopsguard.io", ["Namespace"], path, settings, bundle, False))
        hooks = [h for h in hooks if h["rules"]]
        metadata = {"name": settings.name, "labels": {"app.kubernetes.io/name": "gitopsguard"}}
        found.append({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": metadata,
                      "webhooks": hooks})  # fmt: skip
    return found


NAMESPACE_SUBRESOURCES = ("status", "finalize")


def _webhook(
    name: str, kinds: list[str], path: str, settings: WebhookSettings, bundle: str, break_glass: bool
) -> dict[str, Any]:
    groups: dict[str, list[str]] = {}
    for kind in kinds:
        group, resource = RESOURCES[kind]
        groups.setdefault(group, []).append(resource)
    if not break_glass:  # the namespaces webhook: labels change through these subresources too (red team)
        groups = {group: [*names, *(f"namespaces/{sub}" for sub in NAMESPACE_SUBRESOURCES if "namespaces" in names)]
                  for group, names in groups.items()}  # fmt: skip
    rules = [{"apiGroups": [group], "apiVersions": ["*"], "resources": sorted(resources),
              "operations": ["CREATE", "UPDATE"], "scope": "*"}
             for group, resources in sorted(groups.items())]  # fmt: skip
    terms: list[Mapping[str, Any]] = [{"key": NAME_LABEL, "operator": "NotIn", "values": list(EXEMPT_NAMESPACES)}]
    if break_glass:
        terms.append({"key": BREAK_GLASS, "operator": "NotIn", "values": ["disabled"]})
    client: dict[str, Any] = {"caBundle": bundle}
    if settings.url:
        client["url"] = settings.url.rstrip("/") + f"/{path}"
    else:
        client["service"] = {"namespace": settings.namespace, "name": SERVICE, "path": f"/{path}",
                             "port": settings.port}  # fmt: skip
    hook: dict[str, Any] = {
        "name": name, "clientConfig": client, "rules": rules, "failurePolicy": settings.failure_policy.value,
        "matchPolicy": "Equivalent", "sideEffects": "None", "timeoutSeconds": settings.timeout_seconds,
        "admissionReviewVersions": ["v1"],
        "namespaceSelector": {"matchExpressions": [*terms, *settings.also_match]},
    }  # fmt: skip
    if path == "mutate":
        hook["reinvocationPolicy"] = "Never"
    return hook


WRITE_ATTEMPTS = 3  # another replica's write between our read and write is a conflict; read again and retry


def keep(raw: RawApi, bodies: Iterable[dict[str, Any]]) -> list[str]:
    """Create each configuration, or replace it where it differs; the names of those written."""
    written = []
    for body in bodies:
        plural = "validatingwebhookconfigurations" if body["kind"].startswith("Validating") else \
            "mutatingwebhookconfigurations"  # fmt: skip
        where, subject = f"{API}/{plural}/{body['metadata']['name']}", f"{body['kind']}/{body['metadata']['name']}"
        try:
            if not _write_again_on_conflict(raw, where, subject, body):
                continue
        except UnreachableError:
            raise
        except ClusterError as error:
            raise AdmissionError(f"{subject}: cannot write it: {str(error).removeprefix(subject + ': ')}") from error
        written.append(subject)
    return written


def _write_again_on_conflict(raw: RawApi, where: str, subject: str, body: dict[str, Any]) -> bool:
    """``_write``, read again after a conflict: every replica keeps the configurations, and two starting at once
    both found none and both created it (the second exited with "already exists" and was restarted, and meanwhile
    the API server's calls to it were refused)."""
    for _ in range(WRITE_ATTEMPTS - 1):
        try:
            return _write(raw, where, subject, body)
        except ConflictError:
            continue
    return _write(raw, where, subject, body)


def _write(raw: RawApi, where: str, subject: str, body: dict[str, Any]) -> bool:
    """Create the configuration, or replace it where it differs; whether anything was written."""
    try:
        live = raw.get(where, subject)
    except NotFoundError:
        raw.call("POST", where.rsplit("/", 1)[0], subject, body=body)
        return True
    if live.get("webhooks") == body["webhooks"]:
        return False
    body = {**body, "metadata": {**body["metadata"], "resourceVersion": live["metadata"]["resourceVersion"]}}
    raw.call("PUT", where, subject, body=body)
    return True


def remove(raw: RawApi, name: str) -> None:
    """Delete both configurations called ``name`` (absent ones are fine)."""
    for plural in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"):
        try:
            raw.delete(f"{API}/{plural}/{name}")
        except UnreachableError:
            raise
        except ClusterError:  # absent, or not ours to delete: as before, left as it is
            pass


def label_system_namespaces(raw: RawApi) -> None:
    """Give the exempt namespaces the name label API servers before 1.21 do not set (see module doc)."""
    for name in EXEMPT_NAMESPACES:
        patch = {"metadata": {"labels": {NAME_LABEL: name}}}
        try:
            raw.call("PATCH", f"/api/v1/namespaces/{name}", f"Namespace/{name}", body=patch,
                     content_type="application/merge-patch+json")  # fmt: skip
        except NotFoundError:
            pass  # a namespace this server does not have
        except UnreachableError:
            raise
        except ClusterError as error:
            reason = str(error).removeprefix(f"Namespace/{name}: ")
            raise AdmissionError(f"Namespace/{name}: cannot label it {NAME_LABEL}={name}: {reason}") from error
