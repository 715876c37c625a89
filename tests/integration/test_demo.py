"""The demo's story on the real API server (issue 20): with the loop in signed-merge review, alice's change
pushed straight to main is refused and the cluster keeps its state; the same change merged by carol with a
signed merge is applied; and the policy gate still refuses a privileged Pod that carol's review let through.
Issue 16: alice's hack-a-node `kubectl run` is refused at admission, naming the controls, and the demo's webhook
configurations never outlive its step.

The demo itself starts its own control plane (``make demo``); these tests run its steps on the test cluster
instead, with the loop the demo starts (``start_loop``) under a unit of the test's own."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitopsguard.admission.configurations import API
from gitopsguard.audit import AuditLog
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.commands import demo_admission
from gitopsguard.commands.demo import DemoLoop, demo_repository, show_policy_gate, start_loop
from gitopsguard.commands.demo_admission import DemoAdmissionParts, show_admission
from gitopsguard.commands.demo_review import DemoPeople, demo_people, show_review
from tests.integration.conftest import LiveCluster
from tests.kube import meta
from tests.kubectl import kubectl

pytestmark = pytest.mark.integration
DEMO_NAMESPACES = ("shop", "payments")  # what clusters/dev of repo-template applies


@dataclass(frozen=True)
class Demo:
    people: DemoPeople
    repo: Path
    loop: DemoLoop
    unit: str


def _gone(api: client.ApiClient, timeout: float = 90.0) -> None:
    """Wait until the template's namespaces are gone (an earlier test's may still be terminating)."""
    core, deadline = client.CoreV1Api(api), time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = {meta(n).name for n in core.list_namespace().items}
        if not names & set(DEMO_NAMESPACES):
            return
        time.sleep(0.5)
    raise AssertionError(f"namespaces {DEMO_NAMESPACES} still there after {timeout} s")


def _delete_namespaces(api: client.ApiClient) -> None:
    for name in DEMO_NAMESPACES:
        try:
            client.CoreV1Api(api).delete_namespace(name)
        except ApiException as error:
            if error.status != 404:
                raise


@pytest.fixture
def demo(tmp_path: Path, admin_api: client.ApiClient, dev_cluster: LiveCluster, namespace: str) -> Iterator[Demo]:
    _gone(admin_api)
    people = demo_people(tmp_path / "demo-keys")
    repo = demo_repository(tmp_path / "demo-repo", people)
    start = people.git(repo, "carol", "rev-parse", "HEAD").strip()
    loop = start_loop(admin_api, repo, tmp_path, people.reviewer(start, tmp_path / "review"), unit=namespace)
    try:
        first = loop.first()
        assert first.error is None, first.error
        yield Demo(people, repo, loop, namespace)
    finally:
        loop.close()
        _delete_namespaces(admin_api)


def test_the_demo_refuses_alices_straight_push_and_applies_the_same_change_after_carols_signed_merge(
    demo: Demo, admin_api: client.ApiClient, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = show_review(admin_api, demo.repo, demo.people, demo.loop.results)
    out = capsys.readouterr().out
    assert shown is not None and shown.refused is not None, out
    assert f"commit {shown.pushed[:12]} 'Log at trace level in dev' (pushed straight, signed by alice)" in out
    assert "clusters/dev/kustomization.yaml: pushed without review; needs a merge approved by any approver" in out
    assert shown.kept == "debug"  # the cluster kept the last applied commit's value
    assert shown.applied is not None, out
    assert shown.after == "trace"
    assert f"reviewed: {shown.merged[:12]} merge signed by carol" in out
    assert InventoryStore(admin_api).load(demo.unit).last_applied == shown.merged


def test_the_demo_policy_gate_still_refuses_a_privileged_pod_carol_merged_and_her_revert_applies(
    demo: Demo, admin_api: client.ApiClient, capsys: pytest.CaptureFixture[str]
) -> None:
    show_policy_gate(demo.repo, demo.people, demo.loop.results)
    out = capsys.readouterr().out
    assert "blocked by policy" in out and "carol reverted the merge" in out, out
    assert "was not reviewed" not in out
    head = demo.people.git(demo.repo, "carol", "rev-parse", "HEAD").strip()
    assert InventoryStore(admin_api).load(demo.unit).last_applied == head
    pods = client.CoreV1Api(admin_api).list_namespaced_pod("shop").items
    assert "debug-shell" not in {meta(p).name for p in pods}


def _admission_parts(demo: Demo, api: client.ApiClient, cluster: LiveCluster, log: Path) -> DemoAdmissionParts:
    return DemoAdmissionParts(api, demo.loop.controller.unit, demo.loop.source, cluster.kubeconfig, kubectl(),
                              AuditLog(log))  # fmt: skip


def _configurations_left(api: client.ApiClient, name: str) -> list[str]:
    raw = RawApi(api)
    return [plural for plural in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations")
            if raw.request("GET", f"{API}/{plural}/{name}")[0] != 404]  # fmt: skip


def test_the_demo_refuses_the_hack_a_node_pod_at_kubectl_run_naming_the_controls_then_removes_its_webhooks(
    demo: Demo, admin_api: client.ApiClient, dev_cluster: LiveCluster, namespace: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    name = f"gitopsguard-demo-{namespace}"  # the dev cluster is shared: never the demo's own name here
    log = tmp_path / "admission-audit.jsonl"
    shown = show_admission(_admission_parts(demo, admin_api, dev_cluster, log), namespace=namespace, name=name)
    out = capsys.readouterr().out
    assert f"alice: kubectl -n {namespace} run my-pod --image alpine --restart=Never --overrides='{{" in out
    assert shown.returncode != 0 and not shown.created, out
    assert "denied the request" in shown.stderr and "denied by gitopsguard policy" in shown.stderr, out
    assert {"Host Namespaces", "Privileged Containers"} <= set(shown.controls), out
    assert "The controls it names: Host Namespaces" in out
    # once for policies/pod-security.yaml of the applied revision, once for the namespace's enforce=baseline label
    assert shown.stderr.count("[FAIL] HIGH - Host Namespaces: hostPID") >= 2, shown.stderr
    denied = [r for r in AuditLog(log).records() if r.event == "admission-denied" and "my-pod" in r.subject]
    assert any(r.detail.startswith("by alice (CREATE)") for r in denied), denied
    assert _configurations_left(admin_api, name) == []
    assert "they never outlive the demo" in out


def test_the_demos_webhook_configurations_are_removed_even_when_its_step_fails(
    demo: Demo, admin_api: client.ApiClient, dev_cluster: LiveCluster, namespace: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    name = f"gitopsguard-demo-{namespace}"
    seen: list[list[str]] = []

    def broken(*_: object) -> None:
        seen.append(_configurations_left(admin_api, name))  # registered while the step runs ...
        raise RuntimeError("kubectl went away")

    monkeypatch.setattr(demo_admission, "run_hack_a_node", broken)
    with pytest.raises(RuntimeError, match="kubectl went away"):
        show_admission(_admission_parts(demo, admin_api, dev_cluster, tmp_path / "a.jsonl"), namespace=namespace,
                       name=name)  # fmt: skip
    assert seen == [["validatingwebhookconfigurations", "mutatingwebhookconfigurations"]]
    assert _configurations_left(admin_api, name) == []  # ... and gone after it failed
