"""A Unit removed from the root path garbage-collects what it applied, safely (``fleet_retire.py``), on the real
API server, from a real repository.

The root path (``root``) declares four Units of the test's namespace, ``a`` to ``d``, each applying one
ConfigMap of its name, and holds 16 ConfigMaps of its own, so that the root's own brake lets it prune the Unit
objects it stops declaring (up to 25% of its 20 objects). The loop runs in-process, on a thread, as
``run --root`` runs it; a second loop started on the same repository is a restart."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import CONTROLLER_NAMESPACE, InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.cluster.shardleases import ShardLeases, ShardTiming, shard_api
from gitopsguard.cluster.units import UnitStore
from gitopsguard.errors import ClusterError, NotFoundError
from gitopsguard.fleet import Fleet, accounts
from gitopsguard.fleet_turns import AccountOf
from gitopsguard.model import Action, ObjectKey, Reason
from gitopsguard.plan.prune import BrakePolicy
from gitopsguard.reconcile import ReconcileResult, Unit
from gitopsguard.source import GitSource, SourceSpec
from gitopsguard.units.shards import shard_of
from tests.gitrepo import Upstream
from tests.integration.test_tenant_impersonation import bind, make_namespace
from tests.integration.test_units_crd import install_unit_crd
from tests.integration.test_units_loop import UNIT, configmap, units_of_one_configmap
from tests.waiting import eventually, value_of

pytestmark = pytest.mark.integration

NAMES = ("a", "b", "c", "d")
ROOT_OBJECTS = 16


@dataclass
class Loop:
    """One running Units loop and what it reported."""

    fleet: Fleet
    stop: threading.Event
    thread: threading.Thread
    results: list[ReconcileResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def end(self) -> None:
        self.stop.set()
        self.fleet.wake()
        self.thread.join(20)
        assert not self.thread.is_alive(), "the loop stops when asked"


@dataclass
class Repo:
    upstream: Upstream
    namespace: str
    api: client.ApiClient
    workdir: Path
    loops: list[Loop] = field(default_factory=list)

    def declare(self, **specs: str) -> None:
        """The root path's Units: name -> its spec as flow YAML (none: the root declares no Unit)."""
        text = "".join(UNIT.format(name=n, namespace=self.namespace, spec=s) for n, s in specs.items())
        self.upstream.write("root/units.yaml", text or "# no Unit\n")

    def commit(self, message: str = "change") -> str:
        sha = self.upstream.commit(message)
        for loop in self.loops:
            loop.fleet.wake()
        return sha

    def start(self, *, account_of: AccountOf | None = None, brake: BrakePolicy | None = None) -> Loop:
        own, results, notes = Applier(self.api), list[ReconcileResult](), list[str]()
        fleet = Fleet(Unit(f"{self.namespace}-root", "root", self.namespace, policies_path=None),
                      GitSource(SourceSpec(self.upstream.url), self.workdir / f"gg{len(self.loops)}"), own,
                      InventoryStore(self.api), RawApi(self.api), interval=60, on_result=results.append,
                      on_note=notes.append, account_of=account_of or accounts(own),
                      brake=brake or BrakePolicy())  # fmt: skip
        stop = threading.Event()

        def serve() -> None:
            with contextlib.suppress(Crash):  # the loop's end, as a killed process's
                fleet.run(stop)

        loop = Loop(fleet, stop, threading.Thread(target=serve, daemon=True), results, notes)
        loop.thread.start()
        self.loops.append(loop)
        return loop

    def value(self, name: str, namespace: str | None = None) -> str | None:
        return value_of(client.CoreV1Api(self.api), name, namespace or self.namespace)

    def ready(self, name: str) -> bool:
        try:
            conditions = UnitStore(RawApi(self.api)).get(self.namespace, name).status.get("conditions") or []
        except NotFoundError:
            return False
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    def fleet_rounds(self, loop: Loop, rounds: int) -> None:
        """Wait until ``loop`` served ``rounds`` more rounds."""
        for _ in range(rounds):  # one wake a round: a round that wrote nothing wakes none after it
            self._one_more_round(loop)

    @staticmethod
    def _one_more_round(loop: Loop) -> None:
        until = loop.fleet.rounds + 1
        loop.fleet.wake()
        eventually(lambda: loop.fleet.rounds >= until or not loop.thread.is_alive(), 30, every=0.2)

    def attempted(self, name: str) -> str:
        return str(UnitStore(RawApi(self.api)).get(self.namespace, name).status.get("lastAttemptedRevision"))

    def reason(self, name: str) -> str:
        try:
            conditions = UnitStore(RawApi(self.api)).get(self.namespace, name).status.get("conditions") or []
        except NotFoundError:
            return ""
        return next((str(c.get("reason")) for c in conditions if c.get("type") == "Ready"), "")

    def unit_exists(self, name: str) -> bool:
        try:
            UnitStore(RawApi(self.api)).get(self.namespace, name)
        except NotFoundError:
            return False
        return True

    def inventory(self, name: str) -> bool:
        """Whether the Unit's inventory ConfigMap is in the cluster."""
        return self.in_system(f"gitopsguard-inventory-{self.namespace}.{name}")

    def recorded(self) -> str:
        """The records ConfigMap of the root, as text (its unit count), "" when absent."""
        try:
            body = client.CoreV1Api(self.api).read_namespaced_config_map(f"gitopsguard-units-{self.namespace}-root",
                                                                         CONTROLLER_NAMESPACE)  # fmt: skip
        except client.ApiException as error:
            if error.status == 404:
                return ""
            raise
        return str((body.data or {}).get("count"))

    def in_system(self, name: str) -> bool:
        try:
            client.CoreV1Api(self.api).read_namespaced_config_map(name, CONTROLLER_NAMESPACE)
        except client.ApiException as error:
            if error.status == 404:
                return False
            raise
        return True


@pytest.fixture
def repo(admin_api: client.ApiClient, namespace: str, tmp_path: Path) -> Iterator[Repo]:
    install_unit_crd(RawApi(admin_api))
    state = Repo(Upstream(tmp_path / "git"), namespace, admin_api, tmp_path)
    state.declare(**{n: f"{{path: {n}}}" for n in NAMES})
    state.upstream.write("root/own.yaml", "---\n".join(configmap(f"root-{i}", namespace, "1")
                                                       for i in range(ROOT_OBJECTS)))  # fmt: skip
    for name in NAMES:
        state.upstream.write(f"{name}/cm.yaml", configmap(name, namespace, "1"))
    state.upstream.commit()
    yield state
    for loop in state.loops:
        if loop.thread.is_alive():
            loop.end()
    for name in NAMES:  # what a failed test leaves in gitopsguard-system
        InventoryStore(admin_api).delete(f"{namespace}.{name}")
    InventoryStore(admin_api).delete(f"{namespace}-root")


def all_ready(repo: Repo, names: tuple[str, ...] = NAMES) -> None:
    eventually(lambda: all(repo.ready(n) for n in names), 90, every=0.5)


def test_a_unit_removed_from_the_root_path_with_prune_deletes_its_objects_and_its_inventory(repo: Repo) -> None:
    loop = repo.start()
    all_ready(repo)
    assert repo.inventory("d") and repo.recorded() == "4"
    repo.declare(**{n: f"{{path: {n}}}" for n in NAMES if n != "d"})
    repo.commit("d leaves")
    eventually(lambda: repo.value("d") is None, 60, every=0.5)
    eventually(lambda: not repo.inventory("d") and repo.recorded() == "3", 30, every=0.5)
    assert not repo.unit_exists("d")
    assert [repo.value(n) for n in ("a", "b", "c")] == ["1", "1", "1"], "the other Units keep theirs"
    deleted = [(r.unit, c.key, c.reason) for r in loop.results for c in r.changes
               if c.action is Action.DELETED and c.key.kind != "Unit"]  # fmt: skip
    assert deleted == [(f"{repo.namespace}.d", ObjectKey("", "ConfigMap", repo.namespace, "d"), Reason.PRUNED)]


def test_a_unit_removed_with_prune_false_or_suspended_leaves_its_objects_orphaned(repo: Repo) -> None:
    loop = repo.start()
    all_ready(repo)
    UnitStore(RawApi(repo.api)).set_suspend(repo.namespace, "c", True)  # `gitopsguard suspend unit c`
    repo.declare(a="{path: a}", b="{path: b}", c="{path: c}", d="{path: d, prune: false}")
    sha = repo.commit("d without prune")
    # the round that served d at that commit and c suspended recorded both
    eventually(lambda: repo.attempted("d") == sha and repo.reason("c") == "Suspended", 60, every=0.5)
    repo.declare(a="{path: a}", b="{path: b}")
    repo.commit("c and d leave")
    eventually(lambda: not repo.inventory("c") and not repo.inventory("d") and repo.recorded() == "2", 60, every=0.5)
    assert not repo.unit_exists("c") and not repo.unit_exists("d")
    assert (repo.value("c"), repo.value("d")) == ("1", "1"), "orphaned, as Flux leaves them"
    said = [n for n in loop.notes if "retired (its objects are left in place)" in n]
    assert [n.split(":")[0] for n in said] == [f"Unit/{repo.namespace}/c", f"Unit/{repo.namespace}/d"], loop.notes


def test_a_unit_deleted_by_hand_while_its_file_is_in_git_prunes_nothing(repo: Repo) -> None:
    loop = repo.start()
    all_ready(repo)
    units = UnitStore(RawApi(repo.api))
    before = units.get(repo.namespace, "d").body["metadata"]["uid"]
    RawApi(repo.api).delete(f"/apis/gitopsguard.io/v1alpha1/namespaces/{repo.namespace}/units/d")
    # the root puts it back (its object moved): a new object, served again, and nothing of d's was deleted
    eventually(lambda: repo.unit_exists("d") and units.get(repo.namespace, "d").body["metadata"]["uid"] != before,
               60, every=0.5)  # fmt: skip
    eventually(lambda: repo.ready("d"), 60, every=0.5)
    assert repo.value("d") == "1" and repo.inventory("d") and repo.recorded() == "4"
    assert not [c for r in loop.results for c in r.changes if c.action is Action.DELETED and c.key.kind != "Unit"]


def test_a_root_revision_that_is_refused_retires_nothing(repo: Repo) -> None:
    loop = repo.start()
    all_ready(repo)
    repo.declare(**{n: f"{{path: {n}}}" for n in NAMES if n != "d"})
    repo.upstream.write("root/broken.yaml", "kind: [unclosed\n")
    sha = repo.commit("d leaves, and the root does not render")
    eventually(lambda: any(r.error for r in loop.results if r.unit == f"{repo.namespace}-root" and r.revision == sha),
               60, every=0.5)  # fmt: skip
    repo.fleet_rounds(loop, 2)
    assert repo.unit_exists("d") and repo.value("d") == "1" and repo.inventory("d") and repo.recorded() == "4"


def test_a_commit_removing_every_unit_trips_the_brake_deletes_nothing_and_the_units_come_back(repo: Repo) -> None:
    loop = repo.start()
    all_ready(repo)
    repo.declare()
    sha = repo.commit("every Unit leaves")
    eventually(lambda: not any(repo.unit_exists(n) for n in NAMES), 60, every=0.5)  # the root pruned them
    eventually(lambda: any(r.brake for r in loop.results if r.revision == sha), 30, every=0.5)
    held = next(r for r in loop.results if r.brake and r.revision == sha)
    assert held.unit == f"{repo.namespace}-root" and held.brake is not None
    assert "would delete 4 of the 4 objects the root path's Units own, more than 25%" in held.brake, held.brake
    assert all(f"Unit/{repo.namespace}/{n} (1)" in held.brake for n in NAMES), held.brake
    assert sorted(c.key.name for c in held.changes if c.reason is Reason.BRAKE) == list(NAMES)
    assert any("allow-mass-prune" in note for note in loop.notes), loop.notes
    assert [repo.value(n) for n in NAMES] == ["1"] * 4 and all(repo.inventory(n) for n in NAMES)
    # a Unit re-added before its retirement ended is served again, not pruned
    repo.declare(**{n: f"{{path: {n}}}" for n in NAMES})
    repo.upstream.write("d/cm.yaml", configmap("d", repo.namespace, "2"))
    repo.commit("the Units come back")
    eventually(lambda: repo.value("d") == "2", 60, every=0.5)
    all_ready(repo)
    assert [repo.value(n) for n in ("a", "b", "c")] == ["1"] * 3 and repo.recorded() == "4"
    assert not [c for r in loop.results for c in r.changes if c.action is Action.DELETED and c.key.kind != "Unit"]


def test_a_retirement_deletes_only_what_the_units_account_may_delete(repo: Repo, admin_api: client.ApiClient) -> None:
    ns, other = repo.namespace, make_namespace(admin_api)
    try:
        client.CoreV1Api(admin_api).create_namespaced_service_account(ns, client.V1ServiceAccount(
            metadata=client.V1ObjectMeta(name="deployer")))  # fmt: skip
        bind(admin_api, ns, "deployer-edit", client.RbacV1Subject(kind="ServiceAccount", name="deployer",
                                                                  namespace=ns))  # fmt: skip
        # d once applied as the controller, into another namespace too; then its account became the tenant's
        repo.upstream.write("d/other.yaml", configmap("d-elsewhere", other, "1"))
        repo.commit("d writes elsewhere")
        repo.start(brake=BrakePolicy(max_fraction=0.5))
        all_ready(repo)
        assert repo.value("d-elsewhere", other) == "1"
        repo.declare(**{n: f"{{path: {n}}}" for n in NAMES if n != "d"}, d="{path: d, serviceAccountName: deployer}")
        sha = repo.commit("d acts as its team")
        eventually(lambda: repo.attempted("d") == sha, 60, every=0.5)  # the round of that pass recorded it
        repo.declare(**{n: f"{{path: {n}}}" for n in NAMES if n != "d"})
        repo.commit("d leaves")
        eventually(lambda: repo.value("d") is None, 60, every=0.5)
        eventually(lambda: not repo.inventory("d"), 30, every=0.5)
        assert repo.value("d-elsewhere", other) == "1", "the tenant's account may not delete it: it stays"
        failed = [c for r in repo.loops[0].results if r.unit == f"{ns}.d" for c in r.changes
                  if c.action is Action.FAILED]  # fmt: skip
        assert [(c.key.name, c.reason, c.error and c.error.kind) for c in failed] == [
            ("d-elsewhere", Reason.DELETE_FAILED, "ForbiddenError")], failed  # fmt: skip
    finally:
        client.CoreV1Api(admin_api).delete_namespace(other)


class Crash(BaseException):
    """The process ending mid-retirement (escapes every ``except Exception``)."""


def crashing_after(deletes: int, api: client.ApiClient) -> AccountOf:
    """Appliers that delete ``deletes`` objects, then crash the loop."""
    done: list[str] = []

    class Crashing(Applier):
        def delete(
            self, key: ObjectKey, api_version: str, *, uid: str | None = None, resource_version: str | None = None
        ) -> ClusterError | None:
            if len(done) >= deletes:
                raise Crash
            done.append(str(key))
            return super().delete(key, api_version, uid=uid, resource_version=resource_version)

    own = Crashing(api)
    return lambda _spec: own


def test_a_crash_mid_retirement_resumes_at_the_next_start(repo: Repo) -> None:
    more = "---\n".join(configmap(n, repo.namespace, "1") for n in ("d-2", "d-3"))
    repo.upstream.write("d/more.yaml", more)
    repo.commit("d holds three")
    lenient = BrakePolicy(max_fraction=0.9)
    first = repo.start(account_of=crashing_after(1, repo.api), brake=lenient)
    all_ready(repo)
    repo.declare(**{n: f"{{path: {n}}}" for n in NAMES if n != "d"})
    repo.commit("d leaves")
    first.thread.join(90)
    assert not first.thread.is_alive(), "the loop crashed"
    left = [n for n in ("d", "d-2", "d-3") if repo.value(n) is not None]
    assert len(left) == 2 and repo.inventory("d") and repo.recorded() == "4", left
    second = repo.start(brake=lenient)
    eventually(lambda: all(repo.value(n) is None for n in left), 60, every=0.5)
    eventually(lambda: not repo.inventory("d") and repo.recorded() == "3", 30, every=0.5)
    assert [repo.value(n) for n in ("a", "b", "c")] == ["1"] * 3
    assert sorted(c.key.name for r in second.results for c in r.changes if c.action is Action.DELETED) == left


def test_with_shards_only_the_holder_of_the_units_shard_deletes_what_it_applied(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """Two replicas, 8 shard Leases (in the test's namespace), their rounds run by hand, one after the other:
    the replica holding the root's shard applies the commit that removes a Unit whose shard the other holds;
    it records and judges, but deletes nothing; the other's next round retires the Unit."""
    raw = RawApi(admin_api)
    upstream, names = units_of_one_configmap(raw, namespace, tmp_path, [f"u{i}" for i in range(6)])
    timing = ShardTiming(lease_seconds=30, renew_deadline=20, retry_seconds=0.5)
    stop = threading.Event()
    replicas: list[tuple[Fleet, ShardLeases]] = []
    for me in ("a", "b"):
        leases = ShardLeases(shard_api(admin_api, timing), 8, me=me, namespace=namespace, timing=timing)
        replicas.append((Fleet(Unit(f"{namespace}-root", "root", namespace, policies_path=None),
                               GitSource(SourceSpec(upstream.url), tmp_path / f"gg-{me}"), Applier(admin_api),
                               InventoryStore(admin_api), raw, interval=60, leases=leases), leases))  # fmt: skip
        leases.start(stop)
    repo = Repo(upstream, namespace, admin_api, tmp_path)

    def served_by(fleet: Fleet) -> None:
        fleet.wake()
        fleet._round(stop)  # one round, when the test says

    try:
        eventually(lambda: len(replicas[0][1].held()) + len(replicas[1][1].held()) == 8, 30, every=0.2)
        root = next(r for r in replicas if shard_of(f"{namespace}-root", 8) in r[1].held())
        other = next(r for r in replicas if r is not root)
        leaving = next(n for n in names if shard_of(f"{namespace}.{n}", 8) in other[1].held())

        def all_served() -> bool:
            for fleet, _ in (root, other):
                served_by(fleet)
            return all(repo.ready(n) for n in names)

        eventually(all_served, 90, every=0.2)
        upstream.write("root/units.yaml", "".join(UNIT.format(name=n, namespace=namespace, spec=f"{{path: {n}}}")
                                                  for n in names if n != leaving))  # fmt: skip
        upstream.commit(f"{leaving} leaves")
        served_by(root[0])
        assert not repo.unit_exists(leaving), "the root's holder applied the commit"
        assert repo.value(leaving) == "1" and repo.inventory(leaving), "not its shard: it deletes nothing"
        served_by(other[0])
        assert repo.value(leaving) is None and not repo.inventory(leaving) and repo.recorded() == "5"
        assert all(repo.value(n) == "1" for n in names if n != leaving)
    finally:
        stop.set()
        for name in names:
            InventoryStore(admin_api).delete(f"{namespace}.{name}")
        InventoryStore(admin_api).delete(f"{namespace}-root")
