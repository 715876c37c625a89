"""Per-namespace PolicyReports (``wgpolicyk8s.io/v1alpha2``), so existing report viewers show our findings.

Only failures are reported, to keep volume low: a namespace without failures has no report. The CRD comes
from ``manifests/``; without it, reports are skipped and the caller is told once.

A tenant decides how many failing workloads a namespace holds, so a namespace's results are split into parts
(``gitopsguard``, ``gitopsguard-2``, ...) of at most ``PART_BYTES`` each, far below the API server's limit on
one object: every finding is reported however many there are, and parts no longer needed are removed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from gitopsguard.cluster.rest import RawApi, message_of
from gitopsguard.model import KubeObject

REPORT_NAME = "gitopsguard"
_SEVERITY = {"HIGH": "high", "MED": "medium", "LOW": "low"}


PART_BYTES = 512 * 1024  # JSON of one PolicyReport's results; etcd refuses objects past 1.5 MiB


class Finding(Protocol):
    """What a report shows of one finding (``policy.Finding``). A Protocol, so that the API edge depends on
    no pipeline stage (the import contract ``api-edge``)."""

    @property
    def policy(self) -> str: ...
    @property
    def code(self) -> str: ...
    @property
    def control(self) -> str: ...
    @property
    def level(self) -> str: ...
    @property
    def severity(self) -> str: ...  # HIGH, MED or LOW (policy.Severity is a str enum)
    @property
    def message(self) -> str: ...
    @property
    def path(self) -> str: ...


def results_of(namespace: str, failures: Sequence[tuple[KubeObject, Finding]], now: datetime) -> list[KubeObject]:
    """One PolicyReport result per failing finding (pure)."""
    results = []
    for body, finding in failures:
        metadata = body.get("metadata") or {}
        results.append({
            "policy": finding.policy, "rule": finding.code, "result": "fail", "source": "gitopsguard",
            "severity": _SEVERITY[str(finding.severity)], "message": finding.message[:1000],
            "category": " / ".join(x for x in (finding.control, finding.level) if x) or finding.policy,
            "scored": True, "timestamp": {"seconds": int(now.timestamp()), "nanos": 0},
            "properties": _properties(finding),
            "resources": [{"apiVersion": body.get("apiVersion"), "kind": body.get("kind"),
                           "name": metadata.get("name"), "namespace": namespace, "uid": metadata.get("uid")}],
        })  # fmt: skip
    return results


def _properties(finding: Finding) -> dict[str, str]:
    """Only non-empty values: server-side apply sends an empty string in this map as null, and the CRD then
    refuses the whole report (a CEL rule without a field path made its namespace's report fail)."""
    return {k: v for k, v in (("path", finding.path[:1000]), ("code", finding.code)) if v}


def split(results: list[KubeObject], budget: int = PART_BYTES) -> list[list[KubeObject]]:
    """Results cut into parts whose JSON stays within ``budget`` (pure; at least one part)."""
    parts: list[list[KubeObject]] = [[]]
    size = 1  # "[" and "]", and a comma between results: a part of n results is 1 + sum(result + 1) long
    for result in results:
        length = len(json.dumps(result, separators=(",", ":"))) + 1
        if parts[-1] and size + length > budget:
            parts.append([])
            size = 1
        parts[-1].append(result)
        size += length
    return parts


def part_name(index: int) -> str:
    return REPORT_NAME if index == 0 else f"{REPORT_NAME}-{index + 1}"


def report_body(namespace: str, results: list[KubeObject], index: int = 0, parts: int = 1) -> KubeObject:
    """One PolicyReport: part ``index`` of a namespace's ``parts`` (pure)."""
    return {
        "apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
        "metadata": {"name": part_name(index), "namespace": namespace,
                     "labels": {"app.kubernetes.io/managed-by": "gitopsguard"},
                     "annotations": {"gitopsguard.io/report-part": f"{index + 1} of {parts}"}},
        "summary": {"pass": 0, "fail": len(results), "warn": 0, "error": 0, "skip": 0},
        "results": results,
    }  # fmt: skip


class ReportWriter:
    def __init__(self, raw: RawApi) -> None:
        self._raw = raw
        self.unavailable = ""  # set once the CRD is found missing
        self._parts: dict[str, int] = {}  # parts last written per namespace (unknown after a restart)

    def write(self, namespace: str, failures: Sequence[tuple[KubeObject, Finding]], now: datetime) -> str | None:
        """Apply the namespace's report parts and remove the parts no longer needed; None when done, else why
        not (the first failure)."""
        if self.unavailable:
            return None
        parts = split(results_of(namespace, failures, now)) if failures else []
        for index, results in enumerate(parts):
            problem = self._apply(namespace, report_body(namespace, results, index, len(parts)))
            if problem:
                return problem
        stale = range(len(parts), self._parts[namespace]) if namespace in self._parts else self._listed(namespace)
        for index in stale:
            if index >= len(parts):
                status, answer = self._raw.request("DELETE", self._path(namespace, part_name(index)))
                if status not in (200, 202, 404):
                    return f"PolicyReport/{namespace}/{part_name(index)}: {message_of(status, answer)}"
        self._parts[namespace] = len(parts)
        return None

    def _apply(self, namespace: str, body: KubeObject) -> str | None:
        name = str(body["metadata"]["name"])
        status, answer = self._raw.request("PATCH", self._path(namespace, name),
                                           query={"fieldManager": "gitopsguard", "force": "true"},
                                           body=body, content_type="application/apply-patch+yaml")  # fmt: skip
        if status == 404 and "the server could not find the requested resource" in message_of(status, answer):
            self.unavailable = (
                "PolicyReports are off: the PolicyReport CRD is not installed (kubectl apply -f manifests/crds/); "
                "findings still reach Events and the audit log"
            )
            return self.unavailable
        return None if status in (200, 201) else f"PolicyReport/{namespace}/{name}: {message_of(status, answer)}"

    def _listed(self, namespace: str) -> list[int]:
        """Indexes of the parts there now (after a restart: the previous run may have written more)."""
        query = {"labelSelector": "app.kubernetes.io/managed-by=gitopsguard"}
        status, listed = self._raw.request("GET", self._path(namespace, ""), query=query)
        if status != 200:
            return []
        names = [str((item.get("metadata") or {}).get("name")) for item in listed.get("items") or []]
        return sorted(index for index in map(_index_of, names) if index is not None)

    @staticmethod
    def _path(namespace: str, name: str) -> str:
        return f"/apis/wgpolicyk8s.io/v1alpha2/namespaces/{namespace}/policyreports/{name}".rstrip("/")


def _index_of(name: str) -> int | None:
    if name == REPORT_NAME:
        return 0
    number = name.removeprefix(f"{REPORT_NAME}-")
    return int(number) - 1 if number != name and number.isdigit() and 1 < int(number) < 100_000 else None
