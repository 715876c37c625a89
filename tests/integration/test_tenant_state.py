"""A tenant with one namespace cannot break the state of other teams or stop a unit: hostile names and
volumes of hand-made workloads, on the real API server."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import UNMANAGED_BYTES, Inventory, InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.model import Action, ObjectKey
from gitopsguard.policy import parse_policies
from gitopsguard.reconcile import ReconcileResult, Unit, reconcile
from gitopsguard.scan.judged import Announcement
from gitopsguard.scan.scanner import Scanner
from gitopsguard.scan.state import ScanMemory, ScanStateStore, Tracked
from gitopsguard.source import GitSource, SourceSpec
from tests.flood import flood, make_namespace
from tests.gitrepo import Upstream
from tests.integration.conftest import TEST_LABEL, LiveCluster, bind_user
from tests.kube import as_model, binary_data_of, close, data_of, meta, name_of
from tests.policies import team_label_policy
from tests.waiting import eventually

pytestmark = pytest.mark.integration

OPTED_IN = """\
apiVersion: v1
kind: Namespace
metadata:
  name: {namespace}
  annotations: {{gitopsguard.io/unmanaged: {mode}, gitopsguard.io/unmanaged-grace: 1s}}
"""
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: '{value}'\n"


@dataclass
class Tenant:
    upstream: Upstream
    namespace: str
    api: client.ApiClient
    workdir: Path

    def commit(self, mode: str, value: str) -> str:
        self.upstream.write("apps/ns.yaml", OPTED_IN.format(namespace=self.namespace, mode=mode))
        self.upstream.write("apps/settings.yaml", CONFIGMAP.format(name="settings", value=value))
        return self.upstream.commit()

    def run(self, backups: Path | None) -> ReconcileResult:
        unit = Unit(self.namespace, "apps", default_namespace=self.namespace, backup_dir=backups)
        source = GitSource(SourceSpec(self.upstream.url), self.workdir)
        return reconcile(unit, source, Applier(self.api), InventoryStore(self.api))

    def pod(self, name: str) -> None:
        container = client.V1Container(name="c", image="busybox")
        spec = client.V1PodSpec(containers=[container], automount_service_account_token=False)
        body = client.V1Pod(metadata=client.V1ObjectMeta(name=name), spec=spec)
        client.CoreV1Api(self.api).create_namespaced_pod(self.namespace, body)

    def live_pods(self) -> set[str]:
        pods = client.CoreV1Api(self.api).list_namespaced_pod(self.namespace).items
        return {name_of(p) for p in pods if not meta(p).deletion_timestamp}

    def setting(self) -> str:
        return str(data_of(client.CoreV1Api(self.api).read_namespaced_config_map("settings", self.namespace))["value"])


@pytest.fixture
def tenant(admin_api: client.ApiClient, namespace: str, tmp_path: Path) -> Iterator[Tenant]:
    core = client.CoreV1Api(admin_api)
    deadline = time.monotonic() + 30  # pods are refused until the controller-manager makes the default account
    while not any(meta(sa).name == "default" for sa in core.list_namespaced_service_account(namespace).items):
        assert time.monotonic() < deadline, "the default ServiceAccount never appeared"
        time.sleep(0.1)
    yield Tenant(Upstream(tmp_path / "git"), namespace, admin_api, tmp_path / "gg")


def _change(result: ReconcileResult, name: str) -> tuple[Action, str]:
    (change,) = [c for c in result.changes if c.key.kind == "Pod" and c.key.name == name]
    return change.action, change.detail


def test_an_unmanaged_workload_with_a_240_character_name_is_backed_up_and_deleted(
    tenant: Tenant, tmp_path: Path
) -> None:
    long_name = "x" * 240
    tenant.commit("delete", "1")
    tenant.pod(long_name)
    tenant.run(tmp_path / "backups")  # first seen
    time.sleep(1.2)  # past the grace period
    result = tenant.run(tmp_path / "backups")
    assert result.error is None, result.error
    action, detail = _change(result, long_name)
    assert action is Action.DELETED and "backup:" in detail
    (saved,) = (tmp_path / "backups" / tenant.namespace / tenant.namespace).glob("Pod-*.yaml")
    assert yaml.safe_load(saved.read_text())["metadata"]["name"] == long_name
    assert long_name not in tenant.live_pods()


def test_a_failed_backup_holds_that_workload_alone_and_never_fails_the_unit_pass(
    tenant: Tenant, tmp_path: Path
) -> None:
    unwritable = tmp_path / "backups"
    unwritable.write_text("a file where the backup directory should be")  # every backup fails (even as root)
    tenant.commit("delete", "1")
    tenant.pod("stray")
    tenant.run(unwritable)  # first seen
    time.sleep(1.2)  # past the grace period
    first = tenant.run(unwritable)
    assert first.error is None, first.error
    action, detail = _change(first, "stray")
    assert action is Action.FAILED and "cannot back up" in detail and "kept, not deleted" in detail
    assert "stray" in tenant.live_pods()
    tenant.commit("delete", "2")  # the next commit is applied and stays applied, not put back
    second = tenant.run(unwritable)
    assert second.error is None, second.error
    assert tenant.setting() == "2" and "stray" in tenant.live_pods()


# -- a tenant floods one namespace with 3,500 long-named Pods ---------------------------------------------

FLOOD = 3500
LIVE_POLICY = team_label_policy("1h")


class CountingApi(RawApi):
    """The real client, counting the writes of the live scan's state."""

    def __init__(self, api: client.ApiClient, impersonate: str | None = None) -> None:
        super().__init__(api, impersonate=impersonate)
        self.state_writes: list[float] = []

    def request(self, method: str, path: str, **options: Any) -> tuple[int, dict[str, Any]]:
        body = options.get("body")
        named = path + "/" + str(body.get("metadata", {}).get("name", "")) if isinstance(body, dict) else path
        if method in ("PATCH", "PUT", "POST") and "/configmaps/gitopsguard-live-scan" in named:  # a POST: in its body
            self.state_writes.append(time.monotonic())
        return super().request(method, path, **options)


@dataclass
class Flooded:
    api: client.ApiClient
    flooded: str
    quiet: str
    heard: list[Announcement]
    raw: CountingApi
    scanner: Scanner
    stop: threading.Event

    def restart(self) -> tuple[Scanner, list[Announcement], threading.Event]:
        heard: list[Announcement] = []
        stop = threading.Event()
        scanner = Scanner(Applier(self.api), RawApi(self.api), parse_policies({"p.yaml": LIVE_POLICY}),
                          backup_dir=Path("/nonexistent"), namespaces=frozenset({self.flooded, self.quiet}),
                          announce=heard.extend)  # fmt: skip
        threading.Thread(target=scanner.run, args=(stop,), daemon=True).start()
        return scanner, heard, stop


@pytest.fixture(scope="module")
def flooded(dev_cluster: LiveCluster) -> Iterator[Flooded]:
    api = dev_cluster.api()
    raw = CountingApi(api)
    suffix = uuid.uuid4().hex[:8]
    flooded_ns, quiet_ns = f"flood-{suffix}", f"quiet-{suffix}"
    try:
        for namespace in (flooded_ns, quiet_ns):
            make_namespace(raw, namespace, {TEST_LABEL: "true"})
        flood(raw, flooded_ns, FLOOD)
        flood(raw, quiet_ns, 1, length=20)
        heard: list[Announcement] = []
        stop = threading.Event()
        scanner = Scanner(Applier(api), raw, parse_policies({"p.yaml": LIVE_POLICY}), backup_dir=Path("/nonexistent"),
                          namespaces=frozenset({flooded_ns, quiet_ns}), announce=heard.extend)  # fmt: skip
        threading.Thread(target=scanner.run, args=(stop,), daemon=True).start()
        eventually(lambda: len([a for a in list(heard) if a.event == "violation"]) >= FLOOD + 1, timeout=120, every=0.2)
        time.sleep(3)  # a few rounds of the loop after the first scan
        yield Flooded(api, flooded_ns, quiet_ns, heard, raw, scanner, stop)
        stop.set()
    finally:
        for namespace in (flooded_ns, quiet_ns):
            raw.request("DELETE", f"/api/v1/namespaces/{namespace}")
            raw.request("DELETE", f"/api/v1/namespaces/gitopsguard-system/configmaps/gitopsguard-live-scan-{namespace}")
        close(api)


def test_the_live_scan_state_is_not_rewritten_in_a_hot_loop(flooded: Flooded) -> None:
    settled = time.monotonic()
    time.sleep(3)  # six rounds of the scan loop, nothing changing
    assert [t for t in flooded.raw.state_writes if t >= settled] == []


def test_a_flooded_namespace_cannot_stop_another_namespaces_first_sightings_from_being_saved(flooded: Flooded) -> None:
    flooded.stop.set()
    scanner, heard, stop = flooded.restart()  # a new process: what was saved is all it knows
    try:
        eventually(lambda: scanner.evaluations >= FLOOD + 1, timeout=120, every=0.2)
        time.sleep(1)
        again = [a for a in list(heard) if a.event == "violation"]
        assert [a.key.name for a in again if a.key.namespace == flooded.quiet] == []  # not announced twice
        assert len(again) == 0, f"{len(again)} workloads announced again after a restart"
    finally:
        stop.set()


def test_every_finding_of_a_flooded_namespace_is_reported_in_policy_reports_within_size_limits(
    flooded: Flooded,
) -> None:
    assert flooded.scanner.drain(60)
    status, listed = RawApi(flooded.api).request(
        "GET", f"/apis/wgpolicyk8s.io/v1alpha2/namespaces/{flooded.flooded}/policyreports"
    )
    assert status == 200, listed
    reports = listed.get("items") or []
    assert sum(len(r.get("results") or []) for r in reports) == FLOOD, [p[:200] for p in flooded.scanner.problems]
    assert all(len(json.dumps(r)) < 800 * 1024 for r in reports)
    named = {res["resources"][0]["name"] for r in reports for res in r["results"]}
    assert len(named) == FLOOD


def test_a_refused_state_write_is_reported_once_and_waits_before_the_next_try(
    dev_cluster: LiveCluster, admin_api: client.ApiClient, namespace: str
) -> None:
    bind_user(admin_api, namespace, "alice-view", "ClusterRole", "view")  # she may read the state, not write it
    alice = CountingApi(admin_api, impersonate="alice")
    eventually(
        lambda: alice.request("GET", f"/api/v1/namespaces/{namespace}/configmaps")[0] == 200, timeout=10, every=0.2
    )
    problems: list[str] = []
    clock = [1000.0]
    memory = ScanMemory(ScanStateStore(alice, namespace=namespace), problems.append, clock=lambda: clock[0])
    memory.put("uid-1", Tracked("Pod/shop/a", datetime(2026, 12, 5, tzinfo=UTC), "d1"))
    for _ in range(5):  # five rounds of the scan loop
        memory.save()
        clock[0] += 0.5
    assert len(problems) == 1 and "cannot save the live scan's state of namespace shop" in problems[0], problems
    assert "forbidden" in problems[0].lower()
    assert len(alice.state_writes) == 1  # tried once; the next try waits its minute, not the next round
    clock[0] += ScanMemory.RETRY
    memory.save()
    assert len(alice.state_writes) == 2 and len(problems) == 1  # tried again, not reported again
    writes = CountingApi(admin_api)
    memory = ScanMemory(ScanStateStore(writes, namespace=namespace), problems.append, clock=lambda: clock[0])
    memory.put("uid-1", Tracked("Pod/shop/a", datetime(2026, 12, 5, tzinfo=UTC), "d1"))
    memory.save()
    assert len(writes.state_writes) == 1  # with the rights, it saves at once, and once
    memory.save()
    assert len(writes.state_writes) == 1


# -- unmanaged tracking: a tenant floods an opted-in namespace ------------------------------------------


def test_thousands_of_hand_made_pods_in_an_opted_in_namespace_do_not_fail_the_units_pass(tenant: Tenant) -> None:
    tenant.commit("report", "1")
    flood(RawApi(tenant.api), tenant.namespace, 3300, length=253)  # past 1 MiB when tracked uncompressed
    first = tenant.run(None)
    assert first.error is None, first.error[:500]
    tenant.commit("report", "2")  # the next commit is applied and stays applied
    second = tenant.run(None)
    assert second.error is None, second.error[:500]
    assert tenant.setting() == "2"
    reported = [c for c in second.changes if c.key.kind == "Pod"]
    assert len(reported) == 3300  # every hand-made pod is still reported, tracked or not
    stored = client.CoreV1Api(tenant.api).read_namespaced_config_map(
        f"gitopsguard-inventory-{tenant.namespace}", "gitopsguard-system"
    )
    size = sum(len(v) for v in (stored.data or {}).values()) + sum(len(v) for v in (stored.binary_data or {}).values())
    assert size < 256 * 1024, size


def test_the_inventorys_unmanaged_sightings_stay_within_their_budget_and_keep_the_oldest(
    admin_api: client.ApiClient, namespace: str
) -> None:
    start = datetime(2026, 12, 5, tzinfo=UTC)
    seen = {
        ObjectKey("", "Pod", f"team-{i % 40}", uuid.uuid4().hex * 7 + f"{i:05d}"): start + timedelta(seconds=i)
        for i in range(20_000)
    }  # 20,000 sightings of hard-to-compress 229-character names: far past any budget
    store = InventoryStore(admin_api)
    try:
        store.save(namespace, Inventory({}, "abc", "abc", "", "", seen, True))
        loaded = store.load(namespace).unmanaged
        stored = client.CoreV1Api(admin_api).read_namespaced_config_map(
            f"gitopsguard-inventory-{namespace}", "gitopsguard-system"
        )
        assert len(binary_data_of(stored)["unmanaged.json.gz"]) <= UNMANAGED_BYTES
        assert 0 < len(loaded) < len(seen)
        newest_kept = max(loaded.values())
        assert all(t > newest_kept for k, t in seen.items() if k not in loaded)  # the newest were left out
        assert all(seen[k] == t for k, t in loaded.items())
    finally:
        inventory = f"/api/v1/namespaces/gitopsguard-system/configmaps/gitopsguard-inventory-{namespace}"
        RawApi(admin_api).request("DELETE", inventory)


# -- the live scan's backups ------------------------------------------------------------------------------


def _live_scan(
    api: client.ApiClient, namespaces: set[str], backups: Path
) -> tuple[list[Announcement], threading.Event]:
    heard: list[Announcement] = []
    stop = threading.Event()
    scanner = Scanner(Applier(api), RawApi(api), parse_policies({"p.yaml": LIVE_POLICY.replace("1h", "1s")}),
                      backup_dir=backups, namespaces=frozenset(namespaces), announce=heard.extend)  # fmt: skip
    threading.Thread(target=scanner.run, args=(stop,), daemon=True).start()
    return heard, stop


def test_the_live_scan_backs_up_and_deletes_a_workload_with_a_240_character_name(
    tenant: Tenant, tmp_path: Path
) -> None:
    (name,) = flood(RawApi(tenant.api), tenant.namespace, 1, length=240)
    _, stop = _live_scan(tenant.api, {tenant.namespace}, tmp_path / "backups")
    try:
        eventually(lambda: name not in tenant.live_pods(), timeout=20, every=0.2)
    finally:
        stop.set()
    (saved,) = (tmp_path / "backups" / tenant.namespace).glob("Pod-*.yaml")
    assert yaml.safe_load(saved.read_text())["metadata"]["name"] == name


def test_a_failed_live_scan_backup_holds_that_workload_alone_and_is_announced_once(
    tenant: Tenant, tmp_path: Path
) -> None:
    other = f"{tenant.namespace}-b"
    raw = RawApi(tenant.api)
    make_namespace(raw, other, {TEST_LABEL: "true"})
    try:
        backups = tmp_path / "backups"
        backups.mkdir()
        (backups / tenant.namespace).write_text("a file where this namespace's backups should go")
        (held,) = flood(raw, tenant.namespace, 1, length=30)
        (gone,) = flood(raw, other, 1, length=30)
        heard, stop = _live_scan(tenant.api, {tenant.namespace, other}, backups)
        try:
            eventually(lambda: any(a.event == "deleted" for a in list(heard)), timeout=20, every=0.2)
            time.sleep(2)  # four more rounds of the loop: no retry, no second announcement
        finally:
            stop.set()
        assert held in tenant.live_pods()
        failed = [a for a in heard if a.event == "delete-failed"]
        assert [a.key.name for a in failed] == [held] and "cannot back up" in failed[0].detail
        assert [a.key.name for a in heard if a.event == "deleted"] == [gone]
    finally:
        raw.request("DELETE", f"/api/v1/namespaces/{other}")
        raw.request("DELETE", f"/api/v1/namespaces/gitopsguard-system/configmaps/gitopsguard-live-scan-{other}")


# -- unmanaged tracking believes no label or owner a tenant writes ----------------------------------------


def test_a_hand_made_pod_with_a_forged_unit_label_or_owner_is_unmanaged_and_deleted(
    tenant: Tenant, tmp_path: Path
) -> None:
    tenant.commit("delete", "1")
    tenant.upstream.write(
        "apps/web.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 0\n"
        "  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n"
        "    spec: {containers: [{name: c, image: example/x:1}]}\n",
    )
    tenant.upstream.commit()
    core = client.CoreV1Api(tenant.api)
    forged = [as_model(client.V1OwnerReference, {"apiVersion": "example.com/v1", "kind": "ReplicaSet", "name": "web",
                                                  "uid": str(uuid.uuid4()), "controller": True})]  # fmt: skip
    for name, labels, owners in (("disguised", {"gitopsguard.io/unit": "no-such-unit"}, None),
                                 ("own-unit", {"gitopsguard.io/unit": tenant.namespace}, None),
                                 ("forged-owner", None, forged)):  # fmt: skip
        spec = client.V1PodSpec(containers=[client.V1Container(name="c", image="x")],
                                automount_service_account_token=False)  # fmt: skip
        metadata = client.V1ObjectMeta(name=name, labels=labels, owner_references=owners)
        core.create_namespaced_pod(tenant.namespace, client.V1Pod(metadata=metadata, spec=spec))
    tenant.run(tmp_path / "backups")  # first seen
    time.sleep(1.2)
    result = tenant.run(tmp_path / "backups")
    assert result.error is None, result.error
    assert {c.key.name: c.action for c in result.changes if c.key.kind == "Pod"} == {
        "disguised": Action.DELETED, "own-unit": Action.DELETED, "forged-owner": Action.DELETED,
    }  # fmt: skip
    assert client.AppsV1Api(tenant.api).read_namespaced_deployment("web", tenant.namespace) is not None
    assert not any(c.key.kind == "Deployment" and c.action is Action.DELETED for c in result.changes)


def test_a_namespace_with_nothing_left_to_remember_keeps_no_state_configmap(tenant: Tenant, tmp_path: Path) -> None:
    (name,) = flood(RawApi(tenant.api), tenant.namespace, 1, length=30)
    state = f"/api/v1/namespaces/gitopsguard-system/configmaps/gitopsguard-live-scan-{tenant.namespace}"
    _, stop = _live_scan(tenant.api, {tenant.namespace}, tmp_path / "backups")
    try:
        eventually(
            lambda: RawApi(tenant.api).request("GET", state)[0] == 200, timeout=20, every=0.2
        )  # first sighting saved
        client.CoreV1Api(tenant.api).patch_namespaced_pod(
            name, tenant.namespace, {"metadata": {"labels": {"team": "a"}}}
        )
        eventually(
            lambda: RawApi(tenant.api).request("GET", state)[0] == 404, timeout=20, every=0.2
        )  # compliant: nothing kept
    finally:
        stop.set()
