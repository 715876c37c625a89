"""The admission webhook's Pod Security seam, connected to the one Pod Security Admission decision
(``policy/podsecurity.py``), with the operator's exemptions and the cluster's release.

A namespace that cannot be read (the API server is away, or the name is not one): Pods are refused and
workloads admitted, as Kubernetes' own Pod Security Admission does, so an outage never opens the door.
"""

from __future__ import annotations

from collections.abc import Mapping

from gitopsguard.admission.review import PodSecurity, PodSecurityFindings
from gitopsguard.model import KubeObject
from gitopsguard.policy.model import Finding, Severity
from gitopsguard.policy.podsecurity import NO_EXEMPTIONS, Exemptions, pod_security

UNREADABLE = "pod-security.kubernetes.io/namespace"


def pod_security_seam(exemptions: Exemptions = NO_EXEMPTIONS, kubernetes_minor: int | None = None) -> PodSecurity:
    def check(
        obj: KubeObject, labels: Mapping[str, str] | None, namespace: str, username: str, operation: str,
        old: KubeObject | None,
    ) -> PodSecurityFindings:  # fmt: skip
        if labels is None:
            return (_unreadable(namespace),) if _is_pod(obj) else (), (), ()
        verdict = pod_security(obj, labels, namespace=namespace, username=username, exemptions=exemptions,
                               operation=operation, old=old, kubernetes_minor=kubernetes_minor)  # fmt: skip
        return verdict.enforce, verdict.warn, verdict.audit

    return check


def _is_pod(obj: KubeObject) -> bool:
    return obj.get("kind") == "Pod" and obj.get("apiVersion") == "v1"


def _unreadable(namespace: str) -> Finding:
    return Finding(UNREADABLE, "PSA-NS", "Namespace", "", Severity.HIGH,
                   f"namespace {namespace!r} could not be read, so its Pod Security labels are unknown", "metadata",
                   "retry once the API server answers; Pods are refused until then", True)  # fmt: skip
