"""A tenant's text that the API server accepts cannot break the audit log (issue #15, break 12): a Deployment whose
capability is ``NET_ADMIN`` + U+2028 is scanned live, and the log stays intact and takes the next appends."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.audit import AuditLog
from tests.integration.conftest import LiveCluster
from tests.kube import as_model

pytestmark = pytest.mark.integration
CAPABILITY = "NET_ADMIN\u2028"


def gitopsguard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gitopsguard", *args], capture_output=True, text=True,
                          encoding="utf-8", timeout=120, check=False)  # fmt: skip


def test_a_capability_with_a_line_separator_is_recorded_and_the_log_stays_intact(
    dev_cluster: LiveCluster, admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    container = {"name": "c", "image": "example/x:1", "securityContext": {"capabilities": {"add": [CAPABILITY]}}}
    template = {"metadata": {"labels": {"app": "tenant"}}, "spec": {"containers": [container]}}
    metadata = {"name": "tenant", "labels": {"team": "t"}}
    spec = {"replicas": 0, "selector": {"matchLabels": {"app": "tenant"}}, "template": template}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec}
    created = client.AppsV1Api(admin_api).create_namespaced_deployment(
        namespace, as_model(client.V1Deployment, deployment)
    )
    assert created.spec is not None and created.spec.template.spec is not None
    security = created.spec.template.spec.containers[0].security_context
    assert security is not None and security.capabilities is not None
    kept = security.capabilities.add
    assert kept == [CAPABILITY], "the API server accepts and keeps it"
    log = tmp_path / "audit.jsonl"
    scan = ["scan", "--pack", "pss-baseline", "--namespace", namespace, "--kubeconfig", str(dev_cluster.kubeconfig),
            "--context", "dev-admin", "--audit-log", str(log), "--backup-dir", str(tmp_path / "backups")]  # fmt: skip
    for _ in range(2):  # the keeper's next append, after the tenant's text is in
        scanned = gitopsguard(*scan)
        assert scanned.returncode == 1, scanned.stderr
        verified = gitopsguard("audit", "--log", str(log), "verify")
        assert verified.returncode == 0 and "intact" in verified.stdout, verified.stdout
    details = [r.detail for r in AuditLog(log).records() if r.subject.endswith("/tenant")]
    assert details and all(CAPABILITY in detail for detail in details), details
    shown = gitopsguard("audit", "--log", str(log), "show", "--subject", "/tenant")
    assert "NET_ADMIN\\u2028" in shown.stdout and "\u2028" not in shown.stdout
