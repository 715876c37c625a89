"""The controller serves Units (``run --root``, ``fleet.py``) on the real API server, from a real repository.

The root path declares two Units of the test's namespace: ``infra`` (folder ``infra``) and ``apps`` (folder
``apps``, after ``infra``). The loop runs in-process, on a thread, as ``run --root`` runs it."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from kubernetes import client

from gitopsguard.cli import main
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.cluster.shardleases import ShardLeases, ShardTiming, shard_api
from gitopsguard.cluster.units import LiveUnit, UnitStore
from gitopsguard.errors import NotFoundError
from gitopsguard.fleet import Fleet, accounts
from gitopsguard.model import UNIT_LABEL
from gitopsguard.reconcile import ReconcileResult, Unit
from gitopsguard.source import GitSource, SourceSpec
from tests.gitrepo import Upstream
from tests.integration.conftest import LiveCluster
from tests.integration.test_controller_account import account_kubeconfig
from tests.integration.test_tenant_impersonation import bind, make_namespace
from tests.integration.test_units_crd import install_unit_crd, make_unit
from tests.waiting import CONFIGMAP, eventually, value_of

pytestmark = pytest.mark.integration

UNIT = """\
apiVersion: gitopsguard.io/v1alpha1
kind: Unit
metadata: {{name: {name}, namespace: {namespace}}}
spec: {spec}
---
"""


@dataclass
class Running:
    upstream: Upstream
    namespace: str
    fleet: Fleet
    results: list[ReconcileResult]
    notes: list[str]
    units: UnitStore

    def unit(self, name: str) -> LiveUnit:
        return self.units.get(self.namespace, name)

    def ready(self, name: str) -> dict[str, Any]:
        try:
            conditions = self.unit(name).status.get("conditions") or []
        except NotFoundError:  # the root has not applied it yet
            return {}
        return next((c for c in conditions if c.get("type") == "Ready"), {})

    def said(self, name: str) -> str:
        """What the Unit's status says of its last failure, whole (``lastError``; its conditions hold the first
        line, for `kubectl get units`), else its Ready message."""
        try:
            error = self.unit(name).status.get("lastError")
        except NotFoundError:
            return ""
        return str(error or self.ready(name).get("message") or "")

    def declare(self, **units: str) -> None:
        """The root path's Units: name -> the spec, as flow YAML."""
        text = "".join(UNIT.format(name=n, namespace=self.namespace, spec=s) for n, s in units.items())
        self.upstream.write("root/units.yaml", text)


def gitopsguard(cluster: LiveCluster, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--kubeconfig", str(cluster.kubeconfig)])


@pytest.fixture
def running(admin_api: client.ApiClient, namespace: str, tmp_path: Path) -> Iterator[Running]:
    raw = RawApi(admin_api)
    install_unit_crd(raw)
    upstream = Upstream(tmp_path / "git")
    results: list[ReconcileResult] = []
    notes: list[str] = []
    own = Applier(admin_api)
    fleet = Fleet(Unit(f"{namespace}-root", "root", namespace, policies_path=None),
                  GitSource(SourceSpec(upstream.url), tmp_path / "gg"), own, InventoryStore(admin_api),
                  raw, interval=60, on_result=results.append, on_note=notes.append,
                  account_of=accounts(own))  # fmt: skip
    state = Running(upstream, namespace, fleet, results, notes, UnitStore(raw))
    state.declare(infra="{path: infra}", apps="{path: apps, dependsOn: [{name: infra}]}")
    upstream.write("infra/cm.yaml", configmap("infra", namespace, "1"))
    upstream.write("apps/cm.yaml", configmap("apps", namespace, "1"))
    upstream.commit()
    stop = threading.Event()
    # no watch on the repository: each test wakes the loop after a commit, or shows that something else does
    thread = threading.Thread(target=fleet.run, args=(stop,), daemon=True)
    thread.start()
    yield state
    stop.set()
    fleet.wake()
    thread.join(20)
    assert not thread.is_alive(), "the loop stops when asked"


def configmap(name: str, namespace: str, value: str) -> str:
    return CONFIGMAP.format(name=name, value=value).replace(f"name: {name}", f"name: {name}\n  namespace: {namespace}")


def units_of_one_configmap(raw: RawApi, namespace: str, tmp_path: Path, names: list[str]) -> tuple[Upstream, list[str]]:
    """A committed repository whose root path declares one Unit per name, each applying one ConfigMap."""
    install_unit_crd(raw)
    upstream = Upstream(tmp_path / "git")
    upstream.write("root/units.yaml", "".join(UNIT.format(name=n, namespace=namespace, spec=f"{{path: {n}}}")
                                              for n in names))  # fmt: skip
    for name in names:
        upstream.write(f"{name}/cm.yaml", configmap(name, namespace, "1"))
    upstream.commit()
    return upstream, names


def commit(running: Running, files: dict[str, str], message: str = "change") -> str:
    for path, text in files.items():
        running.upstream.write(path, text)
    sha = running.upstream.commit(message)
    running.fleet.wake()
    return sha


def test_depends_on_orders_apply_and_a_failing_dependency_holds_its_dependents(
    running: Running, admin_api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(admin_api)
    eventually(lambda: running.ready("apps").get("status") == "True", 60, every=0.5)
    order = [r.unit for r in running.results if r.unit in (f"{namespace}.infra", f"{namespace}.apps")]
    assert order[:2] == [f"{namespace}.infra", f"{namespace}.apps"], order
    assert value_of(core, "infra", namespace) == "1" and value_of(core, "apps", namespace) == "1"
    # infra breaks: it is Stalled with its reason, and apps waits, naming it, without applying its own commit
    commit(running, {"infra/cm.yaml": "kind: [unclosed\n", "apps/cm.yaml": configmap("apps", namespace, "2")})
    eventually(lambda: running.ready("apps").get("reason") == "DependencyNotReady", 60, every=0.5)
    infra = running.ready("infra")
    assert (infra["status"], infra["reason"]) == ("False", "BuildFailed"), infra
    apps = running.ready("apps")
    assert apps["status"] == "False" and f"waiting for Unit/{namespace}/infra: not Ready: BuildFailed" in apps[
        "message"], apps  # fmt: skip
    assert value_of(core, "apps", namespace) == "1", "a held dependent applies nothing"
    # infra fixed: both pass, in order
    commit(running, {"infra/cm.yaml": configmap("infra", namespace, "3")})
    eventually(lambda: value_of(core, "apps", namespace) == "2", 60, every=0.5)
    eventually(lambda: running.ready("apps").get("status") == "True", 30, every=0.5)
    assert running.unit("apps").status.get("objects") == 1


def test_a_suspended_unit_changes_nothing_until_resumed(
    running: Running, admin_api: client.ApiClient, namespace: str, dev_cluster: LiveCluster
) -> None:
    core = client.CoreV1Api(admin_api)
    eventually(lambda: running.ready("apps").get("status") == "True", 60, every=0.5)
    assert gitopsguard(dev_cluster, "suspend", "unit", "apps", "-n", namespace).exit_code == 0
    eventually(lambda: running.ready("apps").get("reason") == "Suspended", 30, every=0.5)
    sha = commit(running, {"apps/cm.yaml": configmap("apps", namespace, "2")})
    eventually(lambda: running.unit("infra").status.get("lastAppliedRevision") == sha, 30, every=0.5)
    assert value_of(core, "apps", namespace) == "1", "a suspended Unit changes nothing"
    assert running.ready("apps")["reason"] == "Suspended"
    assert gitopsguard(dev_cluster, "resume", "unit", "apps", "-n", namespace).exit_code == 0
    eventually(lambda: value_of(core, "apps", namespace) == "2", 30, every=0.5)


def test_reconcile_unit_is_served_by_the_running_controller(
    running: Running, admin_api: client.ApiClient, namespace: str, dev_cluster: LiveCluster
) -> None:
    core = client.CoreV1Api(admin_api)
    eventually(lambda: running.ready("apps").get("status") == "True", 60, every=0.5)
    running.upstream.write("apps/cm.yaml", configmap("apps", namespace, "2"))
    sha = running.upstream.commit()  # no wake: the request itself must fetch (the loop's interval is 60 s)
    served = gitopsguard(dev_cluster, "reconcile", "unit", "apps", "-n", namespace, "--timeout", "45s")
    assert served.exit_code == 0, served.output
    assert f"Unit/{namespace}/apps: Ready True" in served.output
    unit = running.unit("apps")
    assert unit.status["lastHandledReconcileAt"] == unit.requested_at
    assert unit.status["lastAppliedRevision"] == sha and value_of(core, "apps", namespace) == "2"


def test_a_unit_a_team_mints_in_its_own_folder_is_refused_and_nothing_of_that_revision_is_applied(
    running: Running, admin_api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(admin_api)
    eventually(lambda: running.ready("apps").get("status") == "True", 60, every=0.5)
    minted = UNIT.format(name="mine", namespace=namespace, spec="{path: stolen}")
    commit(running, {"apps/cm.yaml": configmap("apps", namespace, "2"), "apps/unit.yaml": minted,
                     "stolen/cm.yaml": configmap("stolen", namespace, "x")})  # fmt: skip
    eventually(lambda: running.ready("apps").get("reason") == "InvalidSpec", 60, every=0.5)
    ready = running.ready("apps")
    assert "a Unit may be declared in the root path only" in ready["message"], ready
    assert value_of(core, "apps", namespace) == "1", "nothing of the refused revision is applied"
    assert [u.name for u in running.units.list(namespace)] == ["apps", "infra"]
    assert value_of(core, "stolen", namespace) is None


def test_a_unit_created_by_hand_through_the_api_is_ignored(
    running: Running, admin_api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(admin_api)
    eventually(lambda: running.ready("apps").get("status") == "True", 60, every=0.5)
    raw = RawApi(admin_api)
    made = make_unit(raw, namespace, "byhand", {"path": "stolen"})
    # even with the root's label copied onto it: the root's inventory does not name it
    raw.call("PATCH", f"/apis/gitopsguard.io/v1alpha1/namespaces/{namespace}/units/byhand", "Unit",
             body={"metadata": {"labels": {UNIT_LABEL: f"{namespace}-root"}}},
             content_type="application/merge-patch+json")  # fmt: skip
    commit(running, {"stolen/cm.yaml": configmap("stolen", namespace, "x")})
    eventually(lambda: any(f"Unit/{namespace}/byhand: ignored" in n for n in running.notes), 30, every=0.5)
    assert value_of(core, "stolen", namespace) is None
    assert not running.unit("byhand").status, "no status is written on a Unit the root did not apply"
    assert made["metadata"]["name"] == "byhand"


def test_a_dependency_cycle_is_stalled_naming_it_and_the_others_go_on(
    running: Running, admin_api: client.ApiClient, namespace: str
) -> None:
    eventually(lambda: running.ready("apps").get("status") == "True", 60, every=0.5)
    running.declare(infra="{path: infra, dependsOn: [{name: apps}]}", apps="{path: apps, dependsOn: [{name: infra}]}",
                    other="{path: other}")  # fmt: skip
    commit(running, {"other/cm.yaml": configmap("other", namespace, "1")})
    eventually(lambda: running.ready("apps").get("reason") == "InvalidSpec", 60, every=0.5)
    stalled = next(c for c in running.unit("apps").status["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True" and "dependsOn forms a cycle" in stalled["message"], stalled
    eventually(lambda: value_of(client.CoreV1Api(admin_api), "other", namespace) == "1", 30, every=0.5)


def test_run_root_as_the_controllers_own_account_serves_the_units(
    dev_cluster: LiveCluster, admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """`gitopsguard run --root` as a process, with the token of the account manifests/ installs: its RBAC is
    enough to apply the Units, serve them and write their status."""
    kubeconfig = account_kubeconfig(dev_cluster, admin_api, tmp_path,
                                    ("namespace.yaml", "crds/unit.yaml", "controller-rbac.yaml"))  # fmt: skip
    upstream = Upstream(tmp_path / "git")
    upstream.write("root/units.yaml", "".join(UNIT.format(name=n, namespace=namespace, spec=s) for n, s in (
        ("infra", "{path: infra}"), ("apps", "{path: apps, dependsOn: [{name: infra}]}"))))  # fmt: skip
    upstream.write("infra/cm.yaml", configmap("infra", namespace, "1"))
    upstream.write("apps/cm.yaml", configmap("apps", namespace, "1"))
    upstream.commit()
    process = subprocess.Popen([
        sys.executable, "-m", "gitopsguard", "run", "--repo", str(upstream.bare), "--root", "root",
        "--unit", f"{namespace}-root", "--kubeconfig", str(kubeconfig), "--workdir", str(tmp_path / "gg"),
        "--audit-log", str(tmp_path / "audit.jsonl"), "--interval", "60", "--leader-elect", "--no-live-scan",
        "--metrics-address", "", "--policies-path", "",
    ], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    units = UnitStore(RawApi(admin_api))
    ready = False
    try:
        eventually(lambda: _ready_of(units, namespace, "apps") == "True", 60, every=0.5)
        ready = True
    except AssertionError:
        pass  # told below, with what the controller printed
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            output = process.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert ready, f"Unit apps was not Ready within 60 s; the controller printed:\n{output}"
    assert process.returncode == 0, output
    assert f"as unit {namespace}-root and the Units it declares" in output, output
    assert output.index(f"ConfigMap/{namespace}/infra created") < output.index(f"ConfigMap/{namespace}/apps created")
    events = client.CoreV1Api(admin_api).list_namespaced_event(namespace, field_selector="involvedObject.kind=Unit")
    assert {"ReconciliationSucceeded"} <= {e.reason for e in events.items}


def _ready_of(units: UnitStore, namespace: str, name: str) -> str | None:
    try:
        conditions = units.get(namespace, name).status.get("conditions") or []
    except NotFoundError:
        return None
    return next((str(c.get("status")) for c in conditions if c.get("type") == "Ready"), None)


def test_replicas_split_the_units_by_shard_and_a_stopped_ones_units_move_to_the_other(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """Two replicas, 8 shard Leases (in the test's namespace, short leases): every Unit is applied by one of
    them only; a replica that stops without giving its shards back loses its Units to the other, whose next
    round serves them (a reconcile request to each is answered)."""
    raw = RawApi(admin_api)
    # 12 Units: that their shards all fall to one replica is 1 chance in 2,048 (with 6, 1 in 32: seen in a run)
    upstream, names = units_of_one_configmap(raw, namespace, tmp_path, [f"u{i}" for i in range(12)])
    timing = ShardTiming(lease_seconds=4, renew_deadline=2.5, retry_seconds=0.5)
    replicas: list[tuple[Fleet, list[ReconcileResult], threading.Event]] = []
    for me in ("a", "b"):
        leases = ShardLeases(shard_api(admin_api, timing), 8, me=me, namespace=namespace, timing=timing)
        results: list[ReconcileResult] = []
        fleet = Fleet(Unit(f"{namespace}-root", "root", namespace, policies_path=None),
                      GitSource(SourceSpec(upstream.url), tmp_path / f"gg-{me}"), Applier(admin_api),
                      InventoryStore(admin_api), raw, interval=60, on_result=results.append, leases=leases)  # fmt: skip
        stop = threading.Event()
        leases.start(stop)
        threading.Thread(target=fleet.run, args=(stop,), daemon=True).start()
        replicas.append((fleet, results, stop))
    units = UnitStore(raw)
    try:
        eventually(lambda: all(_ready_of(units, namespace, n) == "True" for n in names), 90, every=0.5)
        applied = [{r.unit for r in results if any(c.action.value == "created" for c in r.changes)}
                   for _, results, _ in replicas]  # fmt: skip
        assert not applied[0] & applied[1], f"applied by both replicas: {applied[0] & applied[1]}"
        assert applied[0] | applied[1] >= {f"{namespace}.{n}" for n in names}
        assert applied[0] and applied[1], "8 shards over two replicas: each holds some"
        replicas[0][2].set()  # replica a stops, keeping its Leases until they run out
        moved = [n for n in names if f"{namespace}.{n}" in applied[0]]
        for name in moved:
            units.request_reconcile(namespace, name, f"moved-{name}")
        replicas[1][0].wake()
        eventually(lambda: all(units.get(namespace, n).status.get("lastHandledReconcileAt") == f"moved-{n}"
                               for n in moved), 30, every=0.5)  # fmt: skip
        served_by_b = {r.unit for r in replicas[1][1]}
        assert {f"{namespace}.{n}" for n in moved} <= served_by_b
    finally:
        for _, _, stop in replicas:
            stop.set()


def test_a_unit_with_prune_false_leaves_what_left_git_and_one_with_prune_deletes_it(
    running: Running, admin_api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(admin_api)
    eventually(lambda: running.ready("apps").get("status") == "True", 60, every=0.5)
    running.declare(infra="{path: infra}", apps="{path: apps, prune: false}")
    generation = running.unit("apps").generation
    commit(running, {})
    eventually(lambda: running.unit("apps").status.get("observedGeneration") == generation + 1, 30, every=0.5)
    running.upstream.write("apps/other.yaml", configmap("other", namespace, "1"))  # a folder is never empty
    running.upstream.remove("apps/cm.yaml")
    running.upstream.remove("infra/cm.yaml")
    running.upstream.write("infra/other.yaml", configmap("infra-other", namespace, "1"))
    commit(running, {}, "one of one objects goes: [gitopsguard: allow-mass-prune]")
    eventually(lambda: value_of(core, "infra", namespace) is None, 30, every=0.5)
    eventually(lambda: value_of(core, "other", namespace) == "1", 30, every=0.5)
    assert value_of(core, "apps", namespace) == "1", "prune: false leaves it"


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {namespace}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: web, image: "registry.invalid/web:1"}}]}}
"""


def test_a_unit_that_waits_for_a_deployment_that_never_becomes_available_is_not_ready_and_holds_its_dependents(
    running: Running, namespace: str
) -> None:
    """No Pod of this Deployment ever runs (an image nobody serves; on a cluster without a node, not even
    scheduled): the wait runs out at the Unit's timeout and names the Deployment."""
    eventually(lambda: running.ready("apps").get("status") == "True", 60, every=0.5)
    running.declare(infra="{path: infra, wait: {enabled: true}, timeout: 3s}", apps="{path: apps, dependsOn: "
                    "[{name: infra}]}")  # fmt: skip
    commit(running, {"infra/web.yaml": DEPLOYMENT.format(namespace=namespace)})
    eventually(lambda: running.ready("infra").get("reason") == "HealthCheckFailed", 60, every=0.5)
    infra, said = running.ready("infra"), running.said("infra")
    assert infra["status"] == "False" and f"Deployment/{namespace}/web" in said, (infra, said)
    assert "not healthy after 3s" in infra["message"], infra
    eventually(lambda: running.ready("apps").get("reason") == "DependencyNotReady", 30, every=0.5)
    assert "HealthCheckFailed" in running.ready("apps")["message"]


def test_a_tenant_unit_is_confined_by_its_account_while_the_platform_unit_is_not(
    running: Running, admin_api: client.ApiClient, namespace: str
) -> None:
    """apps acts as ServiceAccount deployer, with `edit` in its own namespace only; infra as gitopsguard. Both
    folders write a ConfigMap into another namespace: the tenant's revision is refused whole, with the server's
    refusal, and the platform's is applied."""
    core = client.CoreV1Api(admin_api)
    eventually(lambda: running.ready("apps").get("status") == "True", 60, every=0.5)
    core.create_namespaced_service_account(namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(
        name="deployer")))  # fmt: skip
    bind(admin_api, namespace, "deployer-edit", client.RbacV1Subject(kind="ServiceAccount", name="deployer",
                                                                     namespace=namespace))  # fmt: skip
    other = make_namespace(admin_api)
    try:
        running.declare(infra="{path: infra}", apps="{path: apps, serviceAccountName: deployer, dependsOn: "
                        "[{name: infra}]}")  # fmt: skip
        commit(running, {"infra/theirs.yaml": configmap("platform", other, "1"),
                         "apps/theirs.yaml": configmap("tenant", other, "1"),
                         "apps/cm.yaml": configmap("apps", namespace, "2")})  # fmt: skip
        eventually(lambda: running.ready("apps").get("status") == "False", 60, every=0.5)
        apps = running.said("apps")
        assert f"ConfigMap/{other}/tenant" in apps and "forbidden" in apps, apps
        assert f"system:serviceaccount:{namespace}:deployer" in apps, apps
        assert value_of(core, "tenant", other) is None and value_of(core, "apps", namespace) == "1"
        assert value_of(core, "platform", other) == "1", "the platform Unit acts as gitopsguard"
        assert running.ready("infra")["status"] == "True"
    finally:
        core.delete_namespace(other)


def test_an_edit_to_a_units_object_is_repaired_at_once_through_the_one_shared_watch(
    running: Running, admin_api: client.ApiClient, namespace: str
) -> None:
    """The loop's interval is 60 s: a repair within 15 s came from the watch. Both Units own ConfigMaps, and
    the kind is watched once for both (one informer per kind, the unit label routing each event)."""
    core = client.CoreV1Api(admin_api)
    eventually(lambda: running.ready("apps").get("status") == "True", 60, every=0.5)
    eventually(lambda: running.fleet.watched_kinds() == {("v1", "ConfigMap"), ("gitopsguard.io/v1alpha1", "Unit")})
    core.patch_namespaced_config_map("apps", namespace, {"data": {"value": "edited"}})
    eventually(lambda: value_of(core, "apps", namespace) == "1", 15, every=0.2)
    core.delete_namespaced_config_map("infra", namespace)
    eventually(lambda: value_of(core, "infra", namespace) == "1", 15, every=0.2)

    def repaired() -> list[str]:  # a pass's result is recorded after its writes: wait for it, not only for them
        return [r.unit for r in list(running.results) if any(c.repaired_drift for c in r.changes)]

    eventually(lambda: repaired() == [f"{namespace}.apps", f"{namespace}.infra"], 10, every=0.2)


def test_a_suspended_unit_whose_interval_ran_out_does_not_make_the_loop_spin(
    running: Running, dev_cluster: LiveCluster, namespace: str
) -> None:
    """apps passes every 10 s, then is suspended: past its due time the loop has nothing to pass, and waits for
    its own interval (60 s) or an event, rather than coming round again at once."""
    eventually(lambda: running.ready("apps").get("status") == "True", 60, every=0.5)
    running.declare(infra="{path: infra}", apps="{path: apps, interval: 10s}")
    commit(running, {})
    eventually(lambda: running.unit("apps").status.get("observedGeneration") == 2, 60, every=0.5)
    assert gitopsguard(dev_cluster, "suspend", "unit", "apps", "-n", namespace).exit_code == 0
    eventually(lambda: running.ready("apps").get("reason") == "Suspended", 30, every=0.5)
    time.sleep(12)  # apps' 10 s ran out
    rounds = running.fleet.rounds
    time.sleep(3)
    assert running.fleet.rounds - rounds <= 1, f"{running.fleet.rounds - rounds} rounds in 3 s with nothing due"


def test_a_stop_asked_for_mid_round_ends_the_round_before_the_units_left_in_it(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """SIGTERM during a round over many Units: the kubelet kills the Pod at the end of its grace period (30 s by
    default), and a round over 1,000 Units takes longer, so the loop stops between two Units, not after all."""
    raw = RawApi(admin_api)
    upstream, names = units_of_one_configmap(raw, namespace, tmp_path, [f"u{n:02d}" for n in range(40)])
    results: list[ReconcileResult] = []
    own = Applier(admin_api)
    fleet = Fleet(Unit(f"{namespace}-root", "root", namespace, policies_path=None),
                  GitSource(SourceSpec(upstream.url), tmp_path / "gg"), own, InventoryStore(admin_api),
                  raw, interval=60, on_result=results.append, account_of=accounts(own))  # fmt: skip
    stop = threading.Event()
    thread = threading.Thread(target=fleet.run, args=(stop,), daemon=True)
    thread.start()
    eventually(lambda: any(r.unit == f"{namespace}.u00" for r in list(results)), 60, every=0.05)
    stop.set()
    fleet.wake()
    thread.join(20)
    assert not thread.is_alive(), "the loop stops when asked"
    served = {r.unit for r in results} - {f"{namespace}-root"}
    assert 1 <= len(served) < len(names), f"{len(served)} of {len(names)} Units served after the stop"
