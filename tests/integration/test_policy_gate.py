"""The policy gate on the real API server: a denied revision applies nothing and the last good one stays;
mutations reach the cluster; a broken policy file refuses the revision whole."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from kubernetes import client

from gitopsguard.audit import AuditLog
from gitopsguard.cli import main
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.reconcile import ReconcileResult, Unit, reconcile
from gitopsguard.source import GitSource, SourceSpec
from tests.gitrepo import Upstream
from tests.integration.conftest import LiveCluster
from tests.kube import meta, name_of

pytestmark = pytest.mark.integration

POLICY = """\
apiVersion: gitopsguard.io/v1alpha1
kind: Policy
metadata:
  name: no-privileged
spec:
  builtin: {name: pss-baseline}
  enforcement: enforce
---
apiVersion: gitopsguard.io/v1alpha1
kind: Policy
metadata:
  name: owner-label
spec:
  mutate:
    addLabels: {owner: platform}
"""

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  automountServiceAccountToken: false
  containers:
  - name: app
    image: registry.example/app:1
    securityContext: {{privileged: {privileged}}}
"""


class Gate:
    def __init__(self, api: client.ApiClient, namespace: str, root: Path) -> None:
        self.api, self.namespace, self.upstream, self.workdir = api, namespace, Upstream(root / "git"), root / "gg"

    def run(self) -> ReconcileResult:
        unit = Unit(self.namespace, "apps", default_namespace=self.namespace)
        source = GitSource(SourceSpec(self.upstream.url), self.workdir)
        return reconcile(unit, source, Applier(self.api), InventoryStore(self.api))

    def configmap_labels(self, name: str) -> dict[str, str]:
        body = client.CoreV1Api(self.api).read_namespaced_config_map(name, self.namespace)
        return dict(meta(body).labels or {})

    def pods(self) -> list[str]:
        return sorted(name_of(p) for p in client.CoreV1Api(self.api).list_namespaced_pod(self.namespace).items)


@pytest.fixture
def g(admin_api: client.ApiClient, namespace: str, tmp_path: Path) -> Iterator[Gate]:
    sa = client.CoreV1Api(admin_api)
    for _ in range(100):  # pods need the namespace's default ServiceAccount first
        if sa.list_namespaced_service_account(namespace).items:
            break
        time.sleep(0.1)
    yield Gate(admin_api, namespace, tmp_path)


def test_a_denied_revision_applies_nothing_and_the_last_good_state_stays(g: Gate) -> None:
    g.upstream.write("policies/p.yaml", POLICY)
    g.upstream.write("apps/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: '1'}\n")
    g.upstream.commit()
    assert g.run().error is None
    assert g.configmap_labels("settings")["owner"] == "platform"  # the mutation reached the cluster

    g.upstream.write("apps/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: '2'}\n")
    g.upstream.write("apps/pod.yaml", POD.format(name="root-shell", privileged="true"))
    g.upstream.commit()
    blocked = g.run()
    assert blocked.error is not None and "blocked by policy" in blocked.error
    assert "apps/pod.yaml:1: Pod/" in blocked.error and "GG1103 HIGH" in blocked.error
    assert blocked.evaluation is not None and [r.key.name for r in blocked.evaluation.blocked] == ["root-shell"]
    assert g.pods() == []  # nothing of the denied revision was applied, not even the harmless ConfigMap change
    data = client.CoreV1Api(g.api).read_namespaced_config_map("settings", g.namespace).data
    assert data == {"a": "1"}

    g.upstream.write("apps/pod.yaml", POD.format(name="root-shell", privileged="false"))
    g.upstream.commit()
    assert g.run().error is None
    assert g.pods() == ["root-shell"]


def test_a_policy_file_that_does_not_load_refuses_the_revision_naming_file_and_line(g: Gate) -> None:
    g.upstream.write("policies/p.yaml", POLICY.replace("pss-baseline", "pss-everything"))
    g.upstream.write("apps/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n")
    g.upstream.commit()
    result = g.run()
    assert result.error is not None and result.error.startswith("policies/p.yaml:6: unknown built-in 'pss-everything'")
    with pytest.raises(client.exceptions.ApiException):
        client.CoreV1Api(g.api).read_namespaced_config_map("settings", g.namespace)


def test_the_command_records_a_blocked_revision_in_the_audit_log_and_as_an_event_on_the_live_object(
    g: Gate, dev_cluster: LiveCluster
) -> None:
    audit_log = g.workdir.parent / "audit.jsonl"

    def reconcile_command() -> Result:
        return CliRunner().invoke(main, [
            "reconcile", "--repo", str(g.upstream.bare), "--path", "apps", "--unit", g.namespace,
            "--namespace", g.namespace, "--kubeconfig", str(dev_cluster.kubeconfig), "--workdir", str(g.workdir),
            "--audit-log", str(audit_log),
        ])  # fmt: skip

    g.upstream.write("policies/p.yaml", POLICY)
    g.upstream.write("apps/pod.yaml", POD.format(name="shell", privileged="false"))
    g.upstream.commit()
    assert reconcile_command().exit_code == 0
    g.upstream.write("apps/pod.yaml", POD.format(name="shell", privileged="true"))
    g.upstream.commit()
    blocked = reconcile_command()
    assert blocked.exit_code == 2 and "blocked by policy" in blocked.output
    records = [r for r in AuditLog(audit_log).records() if r.event == "policy-denied"]
    assert [(r.subject, r.detail.split()[0]) for r in records] == [(f"Pod/{g.namespace}/shell", "GG1103")]
    events = client.CoreV1Api(g.api).list_namespaced_event(g.namespace).items
    assert any(e.reason == "PolicyViolation" and e.involved_object.name == "shell" for e in events)


def test_a_crd_and_its_instance_in_one_revision_pass_the_gate_and_apply(g: Gate) -> None:
    group = f"{g.namespace}.example.com"
    g.upstream.write("policies/p.yaml", POLICY)
    g.upstream.write("apps/crd.yaml", (
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
        f"metadata: {{name: gadgets.{group}}}\n"
        f"spec:\n  group: {group}\n  scope: Namespaced\n  names: {{plural: gadgets, singular: gadget, kind: Gadget}}\n"
        "  versions:\n  - name: v1\n    served: true\n    storage: true\n"
        "    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}\n"
    ))  # fmt: skip
    g.upstream.write("apps/gadget.yaml", f"apiVersion: {group}/v1\nkind: Gadget\nmetadata: {{name: g1}}\n")
    g.upstream.commit()
    try:
        result = g.run()
        assert result.error is None, result.error
    finally:
        client.ApiextensionsV1Api(g.api).delete_custom_resource_definition(f"gadgets.{group}")
