"""Per-namespace PolicyReports (``wgpolicyk8s.io/v1alpha2``), so existing report viewers show our findings.

Only failures are reported, to keep volume low: a namespace without failures has no report. The CRD comes
from ``manifests/``; without it, reports are skipped and the caller is told once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from gitopsguard.cluster.rest import RawApi, message_of
from gitopsguard.model import KubeObject
from gitopsguard.policy import Finding

REPORT_NAME = "gitopsguard"
_SEVERITY = {"HIGH": "high", "MED": "medium", "LOW": "low"}


def report_body(namespace: str, failures: Sequence[tuple[KubeObject, Finding]], now: datetime) -> KubeObject:
    """The PolicyReport for one namespace's failing findings (pure)."""
    results = []
    for body, finding in failures:
        metadata = body.get("metadata") or {}
        results.append({
            "policy": finding.policy, "rule": finding.code, "result": "fail", "source": "gitopsguard",
            "severity": _SEVERITY[finding.severity.value], "message": finding.message[:1000],
            "category": " / ".join(x for x in (finding.control, finding.level) if x) or finding.policy,
            "scored": True, "timestamp": {"seconds": int(now.timestamp()), "nanos": 0},
            "properties": {"path": finding.path, "code": finding.code},
            "resources": [{"apiVersion": body.get("apiVersion"), "kind": body.get("kind"),
                           "name": metadata.get("name"), "namespace": namespace, "uid": metadata.get("uid")}],
        })  # fmt: skip
    return {
        "apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
        "metadata": {"name": REPORT_NAME, "namespace": namespace,
                     "labels": {"app.kubernetes.io/managed-by": "gitopsguard"}},
        "summary": {"pass": 0, "fail": len(results), "warn": 0, "error": 0, "skip": 0},
        "results": results,
    }  # fmt: skip


class ReportWriter:
    def __init__(self, raw: RawApi) -> None:
        self._raw = raw
        self.unavailable = ""  # set once the CRD is found missing

    def write(self, namespace: str, failures: Sequence[tuple[KubeObject, Finding]], now: datetime) -> str | None:
        """Apply the namespace's report, or remove it when nothing fails; None when done, else why not."""
        if self.unavailable:
            return None
        path = f"/apis/wgpolicyk8s.io/v1alpha2/namespaces/{namespace}/policyreports/{REPORT_NAME}"
        if not failures:
            status, answer = self._raw.request("DELETE", path)
            return None if status in (200, 202, 404) else f"PolicyReport/{namespace}: {message_of(status, answer)}"
        status, answer = self._raw.request("PATCH", path, query={"fieldManager": "gitopsguard", "force": "true"},
                                           body=report_body(namespace, failures, now),
                                           content_type="application/apply-patch+yaml")  # fmt: skip
        if status == 404 and "the server could not find the requested resource" in message_of(status, answer):
            self.unavailable = (
                "PolicyReports are off: the PolicyReport CRD is not installed (kubectl apply -f manifests/crds/); "
                "findings still reach Events and the audit log"
            )
            return self.unavailable
        return None if status in (200, 201) else f"PolicyReport/{namespace}: {message_of(status, answer)}"
