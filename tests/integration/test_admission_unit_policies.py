"""Admission judges by the Units' own policies too (issue 19), on the real API server: the Units loop applies two
Units of one root (``shop`` with its own rule, read-only root file systems for Pods, aimed at the test's
namespace; ``web`` without one, aimed at another), and a second replica that serves neither (a follower, or a
replica under ``--shards`` holding none of their shards) follows their inventories into a clone of its own and
serves the webhook. A hand-made Pod breaking shop's rule is refused naming shop's policy file; one that complies
is admitted; web's namespace is not judged by shop's rule. Until that replica has read the Units it refuses
everything (fail closed), so no tenant wins a race at its start.

The webhook configurations select only this test's namespaces (a label of its own) and are removed in teardown:
the dev cluster is shared."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from prometheus_client import CollectorRegistry

from gitopsguard.admission.applied import AppliedPolicies
from gitopsguard.admission.configurations import API, WebhookSettings, remove
from gitopsguard.admission.record import AdmissionMetrics, AdmissionRecorder
from gitopsguard.admission.serve import start_admission
from gitopsguard.admission.server import Settings
from gitopsguard.audit import AuditLog
from gitopsguard.cluster import retries
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.configmaps import ConfigMapStore, ensure_namespace
from gitopsguard.cluster.inventory import CONTROLLER_NAMESPACE, Inventory, InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.devcluster import StateLayout
from gitopsguard.devcluster.pki import WEBHOOK_CLIENT_CA, WEBHOOK_CLIENT_NAME
from gitopsguard.policy import DenyLevel, parse_policies
from gitopsguard.reconcile import Unit
from gitopsguard.scan.following import Head, InventoryHeads, UnitsFollower
from gitopsguard.scan.governed import Governed
from gitopsguard.scan.scanner import Scanner
from gitopsguard.scan.state import state_name
from gitopsguard.source import GitSource, SourceSpec
from tests.admissionreview import BASELINE
from tests.gitrepo import Upstream
from tests.integration.conftest import LiveCluster, bind_user
from tests.integration.test_admission import _free_port, client_ca
from tests.integration.test_tenant_impersonation import make_namespace
from tests.integration.test_units_crd import install_unit_crd
from tests.integration.test_units_own_policies import start
from tests.kube import as_model
from tests.kubectl import kubectl
from tests.unit.units_policies_repo import pod, repository
from tests.waiting import eventually

pytestmark = pytest.mark.integration
SCOPE_LABEL = "gitopsguard.io/admission-test"
SCAN = "unitadm-scan"
CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}}


@dataclass
class Replica:
    """The replica that serves no Unit: its applied policies, and the webhook it serves them at."""

    cluster: LiveCluster
    raw: RawApi
    shop: str  # the namespace shop's Unit targets (the Units live here too)
    web: str
    applied: AppliedPolicies
    follow: Any  # one round of its follower
    settings: WebhookSettings

    def create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """A server dry-run create of the Pod or ConfigMap ``body`` as the admin."""
        where, plural = body["metadata"]["namespace"], f"{body['kind'].lower()}s"
        return self.raw.request("POST", f"/api/v1/namespaces/{where}/{plural}", body=body, query={"dryRun": "All"})


@dataclass
class Followed:
    """The Units loop applied both Units (as the leader); a second replica's applied policies, not read yet."""

    shop: str
    web: str
    applied: AppliedPolicies
    follow: Any  # one round of that replica's follower


@pytest.fixture
def followed(admin_api: client.ApiClient, namespace: str, tmp_path: Path) -> Iterator[Followed]:
    web = make_namespace(admin_api)
    install_unit_crd(RawApi(admin_api))
    upstream = Upstream(tmp_path / "git")
    repository(upstream, namespace, web, unit_namespace=namespace)
    loop, stop_loop = start(admin_api, namespace, upstream, tmp_path / "leader")
    root = Unit(f"{namespace}-root", "root", namespace, policies_path="policies")  # as the loop's
    follower = UnitsFollower(root, GitSource(SourceSpec(upstream.url), tmp_path / "replica"), Governed())
    applied = AppliedPolicies(DenyLevel.LOW, units=follower)
    source = GitSource(SourceSpec(upstream.url), tmp_path / "replica-root")

    def follow() -> None:
        applied.follow_once(InventoryStore(admin_api), source, root.name, root.policies_path)

    try:
        eventually(lambda: all(loop.ready(n).get("status") == "True" for n in ("shop", "web")), 90, every=0.5)
        yield Followed(namespace, web, applied, follow)
    finally:
        stop_loop()
        client.CoreV1Api(admin_api).delete_namespace(web)


@pytest.fixture
def replica(
    dev_cluster: LiveCluster, admin_api: client.ApiClient, followed: Followed, tmp_path: Path
) -> Iterator[Replica]:
    raw, scope = RawApi(admin_api), uuid.uuid4().hex[:12]
    for where in (followed.shop, followed.web):
        raw.request("PATCH", f"/api/v1/namespaces/{where}", body={"metadata": {"labels": {SCOPE_LABEL: scope}}},
                    content_type="application/merge-patch+json")  # fmt: skip
    port, stop = _free_port(), threading.Event()
    settings = WebhookSettings(name=f"gitopsguard-test-{scope}", url=f"https://127.0.0.1:{port}",
                               namespace=followed.shop,
                               also_match=({"key": SCOPE_LABEL, "operator": "In", "values": [scope]},),
                               always=frozenset({"Pod", "Namespace"}))  # fmt: skip
    recorder = AdmissionRecorder(AuditLog(tmp_path / "audit.jsonl"), lambda *_: None,
                                 AdmissionMetrics(CollectorRegistry()))  # fmt: skip
    admission = None
    try:
        served = Settings(timeout=4.0, client_ca=client_ca(dev_cluster))
        admission = start_admission(raw, ("127.0.0.1", port), settings, followed.applied.get, recorder, stop,
                                    label_system_namespaces=False, learn_identity=False,
                                    server_settings=served)  # fmt: skip
        once = RawApi(admin_api, retry=retries.ONCE)  # a refusal for want of policies is a 503: seen, not retried
        yield Replica(dev_cluster, once, followed.shop, followed.web, followed.applied, followed.follow, settings)
    finally:
        stop.set()
        remove(raw, settings.name)
        if admission is not None:
            admission.server.stop()


def _resources(replica: Replica) -> set[str]:
    """The resources the replica's validating configuration sends to it."""
    name = replica.settings.name
    found = replica.raw.get(f"{API}/validatingwebhookconfigurations/{name}", f"ValidatingWebhookConfiguration/{name}")
    return {r for hook in found["webhooks"] for rule in hook["rules"] for r in rule["resources"]}


def _refused(replica: Replica, body: dict[str, Any]) -> str:
    """The webhook's message refusing ``body`` ("" when it was admitted)."""
    status, answer = replica.create(body)
    return json.dumps(answer) if status >= 400 else ""


def test_a_replica_serving_no_unit_refuses_everything_until_it_has_read_the_units_policies(replica: Replica) -> None:
    """A tenant cannot win a race at the replica's start: before it has read the Units, not even a Pod that
    every policy allows is admitted (the root's policies alone would admit the one shop's rule forbids)."""
    replica.applied.offer(parse_policies({"policies/pss.yaml": BASELINE}), "abc")  # the root's, as a leader offers
    assert not replica.applied.judging()  # not ready for admission (/readyz), and a request that comes is refused
    waiting = "has not read the own policies of the Units its root path declares yet"
    eventually(lambda: waiting in _refused(replica, pod(replica.shop, read_only=True)), 30)
    assert waiting in _refused(replica, pod(replica.web, read_only=True))
    # the Units' policies may target any kind: until they are read, every kind is sent to the webhook (the keeper
    # looks every second whether what it judges by changed; three seconds after the offer, it has written)
    time.sleep(3)
    assert "configmaps" in _resources(replica)
    assert waiting in _refused(replica, CONFIGMAP | {"metadata": {"name": "c", "namespace": replica.shop}})
    replica.follow()
    assert replica.applied.judging() and _refused(replica, pod(replica.web, read_only=True)) == ""
    eventually(lambda: _refused(replica, CONFIGMAP | {"metadata": {"name": "c", "namespace": replica.shop}}) == "", 30)


def test_a_hand_made_pod_breaking_the_units_own_rule_is_denied_naming_its_policy_file(replica: Replica) -> None:
    replica.follow()
    assert replica.applied.get() is not None
    bind_user(replica.cluster.api(), replica.shop, "alice-edit", "ClusterRole", "edit")
    tenant = [kubectl(), "--kubeconfig", str(replica.cluster.kubeconfig), "--context", "dev-alice", "-n", replica.shop]

    def denied_to_the_tenant() -> str:
        body = json.dumps(pod(replica.shop, read_only=False))
        result = subprocess.run([*tenant, "create", "--dry-run=server", "-f", "-"], capture_output=True, text=True,
                                input=body, timeout=60, check=False)  # fmt: skip
        return result.stderr if result.returncode != 0 else ""

    eventually(lambda: "read-only root file system" in denied_to_the_tenant(), 30)
    message = denied_to_the_tenant()
    assert "denied the request" in message and "(SHOP002)" in message
    assert "shop-policies/read-only-root.yaml:1: policy" in message and f"Unit {replica.shop}.shop's own" in message
    assert _refused(replica, pod(replica.shop, read_only=True)) == ""


def test_another_teams_namespace_is_not_judged_by_the_units_rule(replica: Replica) -> None:
    replica.follow()
    eventually(lambda: _refused(replica, pod(replica.shop, read_only=False)) != "", 30)  # the webhook is called
    assert _refused(replica, pod(replica.web, read_only=False)) == ""


def test_the_live_scan_of_a_replica_serving_no_unit_judges_each_namespace_by_the_same_governance(
    admin_api: client.ApiClient, followed: Followed, tmp_path: Path
) -> None:
    """Under ``--shards`` a replica scans with the governance its follower made of every Unit (not only of the
    Units of the shards it holds): a hand-made Pod breaking shop's rule is found in shop's namespace alone."""
    core = client.CoreV1Api(admin_api)
    for where in (followed.shop, followed.web):
        core.create_namespaced_pod(where, as_model(client.V1Pod, pod(where, read_only=False)))
    followed.follow()
    governance = followed.applied.governance()
    assert governance is not None
    found: list[tuple[str, str, str]] = []
    scanner = Scanner(Applier(admin_api), RawApi(admin_api), governance, backup_dir=tmp_path, unit=SCAN,
                      namespaces=frozenset({followed.shop, followed.web}), observe=found.extend)  # fmt: skip
    try:
        scanner.scan_all()
        assert (f"{followed.shop}.shop/read-only-root-pods", "HIGH", followed.shop) in found
        assert not [f for f in found if f[2] == followed.web]
    finally:
        assert scanner.drain()
        for where in (followed.shop, followed.web):
            ConfigMapStore(RawApi(admin_api), CONTROLLER_NAMESPACE).delete(state_name(where, SCAN))


def test_run_root_serves_admission_by_a_units_own_policies(
    dev_cluster: LiveCluster, admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """`gitopsguard run --root --admission-address` as a process: the wiring (the follower of every Unit's
    inventory, shared with the Units loop) judges shop's namespace by shop's rule and web's without it."""
    raw, web, scope = RawApi(admin_api), make_namespace(admin_api), uuid.uuid4().hex[:12]
    install_unit_crd(raw)
    ensure_namespace(raw, CONTROLLER_NAMESPACE)
    for where in (namespace, web):
        raw.request("PATCH", f"/api/v1/namespaces/{where}", body={"metadata": {"labels": {SCOPE_LABEL: scope}}},
                    content_type="application/merge-patch+json")  # fmt: skip
    for where in (namespace, web):  # a tenant with edit in each (the same user, for brevity)
        bind_user(admin_api, where, "alice-edit", "ClusterRole", "edit")
    alice = RawApi(dev_cluster.api("dev-alice"))
    upstream = Upstream(tmp_path / "git")
    repository(upstream, namespace, web, unit_namespace=namespace)
    port = _free_port()
    ca = StateLayout(dev_cluster.kubeconfig.parent).pki_dir / WEBHOOK_CLIENT_CA
    authenticated = ["--admission-client-ca", str(ca), "--admission-client-name", WEBHOOK_CLIENT_NAME]
    process = subprocess.Popen([
        sys.executable, "-m", "gitopsguard", "run", "--repo", str(upstream.bare), "--root", "root",
        "--unit", f"{namespace}-root", "--kubeconfig", str(dev_cluster.kubeconfig), "--workdir", str(tmp_path / "gg"),
        "--audit-log", str(tmp_path / "audit.jsonl"), "--interval", "60", "--no-live-scan", "--metrics-address", "",
        "--policies-path", "policies", "--admission-address", f"127.0.0.1:{port}",
        "--admission-url", f"https://127.0.0.1:{port}", "--admission-namespace-label", f"{SCOPE_LABEL}={scope}",
        *(authenticated if ca.exists() else []),
    ], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip

    def refused(where: str, read_only: bool) -> str:
        status, answer = alice.request("POST", f"/api/v1/namespaces/{where}/pods", query={"dryRun": "All"},
                                       body=pod(where, read_only=read_only))  # fmt: skip
        return json.dumps(answer) if status >= 400 else ""

    seen: list[str] = []

    def denied_by_shops_rule() -> bool:
        seen.append(refused(namespace, False))
        return "read-only root file system" in seen[-1]

    try:
        try:
            eventually(denied_by_shops_rule, 120, every=0.5)
        except AssertionError:
            process.send_signal(signal.SIGTERM)
            raise AssertionError(f"{seen[-3:]}\n{process.communicate(timeout=30)[0]}") from None
        assert "shop-policies/read-only-root.yaml:1: policy" in refused(namespace, False)
        assert refused(namespace, True) == ""
        assert refused(web, False) == ""
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        remove(raw, "gitopsguard")
        client.CoreV1Api(admin_api).delete_namespace(web)
    assert process.returncode == 0, output


def test_the_inventories_watch_keeps_each_units_applied_commit_and_settings(
    admin_api: client.ApiClient, namespace: str
) -> None:
    heads, stop = InventoryHeads(namespace), threading.Event()  # the test's namespace stands in for gitopsguard-system
    store = InventoryStore(admin_api, namespace=namespace)
    heads.start(lambda: Applier(admin_api), RawApi(admin_api), stop)
    try:
        eventually(lambda: heads.heads() == {}, 20)
        store.save("team.app", Inventory(last_applied="abc", applied_as="path=a namespace=team policies=p deny=LOW"))
        eventually(lambda: (heads.heads() or {}).get("team.app") == Head("abc", "path=a namespace=team policies=p "
                                                                            "deny=LOW"), 20)  # fmt: skip
        store.delete("team.app")
        eventually(lambda: heads.heads() == {}, 20)
    finally:
        stop.set()
