"""`gitopsguard reconcile` against the real API server holds none of its rendered objects while it writes the
audit records, its peak: the render is dropped with the pass (no memo in a one-off process, no manifests in the
result it reports), and the audit says what the pass did all the same."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from click.testing import CliRunner

from gitopsguard.audit import AuditLog
from gitopsguard.cli import main
from gitopsguard.commands import reconcile_once
from gitopsguard.model import Manifest
from gitopsguard.reconcile import ReconcileResult
from tests.gitrepo import Upstream
from tests.integration.conftest import LiveCluster

pytestmark = pytest.mark.integration

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{n}\n  namespace: {ns}\ndata:\n  key: value-{n}\n"


def test_reconcile_command_holds_no_rendered_manifest_while_it_writes_the_audit(
    namespace: str, dev_cluster: LiveCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream = Upstream(tmp_path / "git")
    upstream.write("apps/cms.yaml", "---\n".join(CONFIGMAP.format(n=n, ns=namespace) for n in range(20)))
    upstream.commit()
    alive: list[int] = []
    write_audit = reconcile_once.record

    def record(log: AuditLog, result: ReconcileResult) -> None:
        gc.collect()
        alive.append(sum(1 for o in gc.get_objects() if isinstance(o, Manifest) and o.key.namespace == namespace))
        write_audit(log, result)

    monkeypatch.setattr(reconcile_once, "record", record)
    audit_log = tmp_path / "audit.jsonl"
    ran = CliRunner().invoke(main, [
        "reconcile", "--repo", str(upstream.bare), "--path", "apps", "--unit", namespace, "--namespace", namespace,
        "--kubeconfig", str(dev_cluster.kubeconfig), "--workdir", str(tmp_path / "gg"), "--audit-log", str(audit_log),
    ])  # fmt: skip
    assert ran.exit_code == 0, ran.output
    assert "20 created" in ran.output
    assert alive == [0]
    created = [r.subject for r in AuditLog(audit_log).records() if r.event == "created"]
    assert created == [f"ConfigMap/{namespace}/cm-{n}" for n in range(20)]
