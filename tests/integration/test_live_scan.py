"""The live scan on the real control plane: hand-made workloads are reported, announced once, and removed
after their grace period with a backup first; Git-managed and terminating ones are never deleted."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import Entry, Inventory, InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.model import ObjectKey
from gitopsguard.policy import PolicySet, parse_policies
from gitopsguard.scan.judged import Announcement
from gitopsguard.scan.scanner import Scanner
from tests.kube import as_model
from tests.policies import team_label_policy
from tests.waiting import eventually

pytestmark = pytest.mark.integration
CRD = Path(__file__).parents[2] / "manifests" / "crds" / "policyreport.yaml"

POLICIES = team_label_policy("2s")


def deployment(name: str, labels: dict[str, str], finalizers: list[str] | None = None) -> dict[str, Any]:
    pod = {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "example/x:1"}]}}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": labels, "finalizers": finalizers or []},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}}, "template": pod}}  # fmt: skip


class Scan:
    def __init__(self, api: client.ApiClient, namespace: str, backups: Path) -> None:
        self.api, self.namespace, self.backups = api, namespace, backups
        self.heard: list[Announcement] = []
        self.stop = threading.Event()
        self.scanner: Scanner | None = None

    def start(self, policies: PolicySet, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Scanner:
        self.stop = threading.Event()
        scanner = Scanner(Applier(self.api), RawApi(self.api), policies, backup_dir=self.backups,
                          namespaces=frozenset({self.namespace}), announce=self.heard.extend, clock=clock)  # fmt: skip
        threading.Thread(target=scanner.run, args=(self.stop,), daemon=True).start()
        self.scanner = scanner
        return scanner

    def events(self, kind: str, name: str) -> list[tuple[str, str]]:
        return [(a.event, a.detail) for a in self.heard if a.key.kind == kind and a.key.name == name]

    def heard_once(self, name: str, event: str) -> list[str]:
        """The events heard for Deployment ``name`` once ``event`` is among them. A round announces at its end,
        so the object can be gone a moment before its "deleted" is heard."""
        eventually(lambda: event in [e for e, _ in self.events("Deployment", name)], timeout=20, every=0.1)
        return [e for e, _ in self.events("Deployment", name)]

    def create(self, body: dict[str, Any]) -> None:
        client.AppsV1Api(self.api).create_namespaced_deployment(self.namespace, as_model(client.V1Deployment, body))

    def exists(self, name: str) -> bool:
        try:
            client.AppsV1Api(self.api).read_namespaced_deployment(name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True


@pytest.fixture
def scan(admin_api: client.ApiClient, namespace: str, tmp_path: Path) -> Iterator[Scan]:
    crd = yaml.safe_load(CRD.read_text())  # the PolicyReport CRD, as manifests/ installs it
    path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}"
    RawApi(admin_api).request("PATCH", path, query={"fieldManager": "test", "force": "true"}, body=crd,
                              content_type="application/apply-patch+yaml")  # fmt: skip
    s = Scan(admin_api, namespace, tmp_path / "backups")
    yield s
    s.stop.set()
    RawApi(admin_api).request(
        "DELETE", f"/api/v1/namespaces/gitopsguard-system/configmaps/gitopsguard-inventory-{namespace}"
    )


def test_a_hand_made_workload_is_announced_once_then_backed_up_and_deleted_after_its_grace(scan: Scan) -> None:
    scan.create(deployment("stray", {}))
    scan.create(deployment("fine", {"team": "shop"}))
    scan.create(deployment("from-git", {"gitopsguard.io/unit": scan.namespace}))
    listed = ObjectKey("apps", "Deployment", scan.namespace, "from-git")  # its unit's inventory lists it
    InventoryStore(scan.api).save(scan.namespace, Inventory({listed: Entry("apps/v1", "1", "d")}, "abc"))
    scanner = scan.start(parse_policies({"policies/p.yaml": POLICIES}))

    eventually(lambda: not scan.exists("stray"), timeout=20, every=0.1)
    assert scan.heard_once("stray", "deleted") == ["violation", "deleted"]
    (backup,) = (scan.backups / scan.namespace).glob("Deployment-stray-*.yaml")
    saved = yaml.safe_load(backup.read_text())
    assert saved["metadata"]["name"] == "stray" and "resourceVersion" not in saved["metadata"]

    time.sleep(3)  # well past the grace period: the Git-managed one is held, not deleted
    assert scan.exists("from-git") and scan.exists("fine")
    ((event, why),) = scan.events("Deployment", "from-git")
    assert event == "violation" and "fix it with a pull request" in why
    assert scan.events("Deployment", "fine") == []

    def reasons() -> set[tuple[str | None, str | None]]:
        events = client.CoreV1Api(scan.api).list_namespaced_event(scan.namespace).items
        return {(e.involved_object.name, e.reason) for e in events}

    wanted = {("stray", "PolicyViolation"), ("stray", "DeletedByPolicy"), ("from-git", "PolicyViolation")}
    eventually(lambda: wanted <= reasons(), timeout=20, every=0.1)

    def one_failure_reported() -> bool:
        report = _report(scan)
        return report is not None and bool(report["summary"]["fail"] == 1)

    eventually(one_failure_reported, timeout=20, every=0.1)
    report = _report(scan)
    assert report is not None, "the PolicyReport is gone"
    (result,) = report["results"]
    assert result["resources"][0]["name"] == "from-git" and result["rule"] == "GG3001" and result["result"] == "fail"
    assert scanner.problems == []


def _report(scan: Scan) -> dict[str, Any] | None:
    status, body = RawApi(scan.api).request(
        "GET", f"/apis/wgpolicyk8s.io/v1alpha2/namespaces/{scan.namespace}/policyreports/gitopsguard"
    )
    return body if status == 200 else None


def test_a_terminating_workload_is_neither_deleted_again_nor_announced(scan: Scan) -> None:
    scan.create(deployment("leaving", {}, finalizers=["example.com/hold"]))
    client.AppsV1Api(scan.api).delete_namespaced_deployment("leaving", scan.namespace)
    scanner = scan.start(parse_policies({"p.yaml": POLICIES.replace("2s", "0s")}))
    eventually(lambda: scanner.evaluations >= 1, timeout=20, every=0.1)
    time.sleep(1.5)
    assert scan.events("Deployment", "leaving") == []
    client.AppsV1Api(scan.api).patch_namespaced_deployment(
        "leaving", scan.namespace, {"metadata": {"finalizers": None}}
    )


def test_a_restart_neither_announces_again_nor_restarts_the_grace_period(scan: Scan) -> None:
    scan.create(deployment("stray", {}))
    policies = parse_policies({"p.yaml": POLICIES.replace("2s", "4s")})
    scan.start(policies)
    eventually(lambda: scan.events("Deployment", "stray") == [("violation", "")], timeout=20, every=0.1)
    started = time.monotonic()
    time.sleep(1)
    scan.stop.set()
    scan.heard.clear()
    scan.start(policies)  # a new process: it remembers from the state ConfigMap
    eventually(lambda: not scan.exists("stray"), timeout=20, every=0.1)
    assert scan.heard_once("stray", "deleted") == ["deleted"]
    assert time.monotonic() - started < 6  # about 4 s after it was first seen, not 4 s after the restart


def test_only_changed_objects_are_evaluated_again(scan: Scan) -> None:
    for index in range(5):
        scan.create(deployment(f"d{index}", {"team": "a"}))
    scanner = scan.start(parse_policies({"p.yaml": POLICIES}))
    eventually(lambda: scanner.evaluations == 5, timeout=20, every=0.1)
    time.sleep(1)
    client.AppsV1Api(scan.api).patch_namespaced_deployment("d3", scan.namespace, {"metadata": {"labels": {"x": "1"}}})
    eventually(lambda: scanner.evaluations == 6, timeout=20, every=0.1)
    time.sleep(1.5)
    assert scanner.evaluations == 6


def test_when_an_exception_expires_the_workloads_it_covered_are_judged_again_at_that_instant(scan: Scan) -> None:
    # The scanner's clock, moved past the expiry by the test: a loaded machine cannot outrun a wall-clock expiry.
    ahead = [timedelta(0)]
    scan.create(deployment("excused", {}))
    expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    exception = (
        "apiVersion: gitopsguard.io/v1alpha1\nkind: PolicyException\nmetadata: {name: migration}\n"
        f"spec:\n  policies: [team-label]\n  match: {{names: [excused]}}\n  reason: moving teams\n"
        f"  expires: '{expires}'\n"
    )
    policies = parse_policies({"p.yaml": POLICIES.replace("delete", "notify"), "e.yaml": exception})
    scanner = scan.start(policies, clock=lambda: datetime.now(UTC) + ahead[0])
    eventually(lambda: scanner.evaluations >= 1, timeout=20, every=0.1)
    time.sleep(1)
    assert scan.events("Deployment", "excused") == []  # covered: nothing to say
    ahead[0] = timedelta(hours=2)
    eventually(lambda: [e for e, _ in scan.events("Deployment", "excused")] == ["violation"], timeout=10, every=0.1)


def test_new_policies_are_applied_from_memory_and_the_same_policy_files_cost_nothing(scan: Scan) -> None:
    for index in range(3):
        scan.create(deployment(f"d{index}", {"team": "a"}))
    scanner = Scanner(Applier(scan.api), RawApi(scan.api), parse_policies({"p.yaml": POLICIES}),
                      backup_dir=scan.backups, namespaces=frozenset({scan.namespace}))  # fmt: skip
    scanner.scan_all()
    assert scanner.evaluations == 3
    scanner.set_policies(parse_policies({"p.yaml": POLICIES}))  # a new commit, the same policy files
    assert scanner.evaluations == 3
    scanner.set_policies(parse_policies({"p.yaml": POLICIES.replace("[team]", "[team, owner]")}))
    assert scanner.evaluations == 6 and scanner.non_compliant == 3
