"""A pass at rest reads no inventory; a changed or deleted inventory is still read before any write.

The Units loop keeps each unit's inventory in memory with its resourceVersion, and one watch of the inventories
vouches that the version is still the one stored (``InventoryStore.recall``). A pass at rest then makes no
request for it. Another replica that took the unit's shard, or a human who deleted the ConfigMap, must still be
seen before the pass writes or prunes anything: prune decisions never use a stale inventory."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import Inventory, InventoryStore
from gitopsguard.heads import Head, judge
from gitopsguard.model import Action, ObjectKey
from gitopsguard.plan.prune import BrakePolicy
from gitopsguard.reconcile import Reconciler, Unit, renderer
from gitopsguard.source import GitSource, SourceSpec
from tests.gitrepo import Upstream
from tests.kube import meta
from tests.waiting import eventually

pytestmark = pytest.mark.integration
OPEN_BRAKE = BrakePolicy(released=True)  # a unit of two objects deleting one is no mass prune here


def configmap(name: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{v: '1'}}\n"


class CountingStore(InventoryStore):
    """The real store, counting the reads of an inventory from the API server."""

    loads = 0

    def load(self, unit: str) -> Inventory:
        self.loads += 1
        return super().load(unit)


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


class Loop:
    """A unit served as the Units loop serves one: a head judged per commit, one store following the inventories."""

    def __init__(self, api: client.ApiClient, namespace: str, tmp_path: Path, stop: threading.Event) -> None:
        self.upstream = Upstream(tmp_path / "git")
        self.unit = Unit(namespace, "apps", namespace)
        self.source = GitSource(SourceSpec(self.upstream.url), tmp_path / "gg")
        self.applier, self.store = Applier(api), CountingStore(api)
        self.store.follow(self.applier, stop)
        self.reconciler = Reconciler(self.source, self.applier, self.store, brake=OPEN_BRAKE)

    def commit(self, files: dict[str, str | None]) -> None:
        for path, text in files.items():
            if text is None:
                self.upstream.remove(path)
            else:
                self.upstream.write(path, text)
        self.upstream.commit()

    def pass_(self, reconciler: Reconciler | None = None) -> list[tuple[str, Action]]:
        revision = self.source.fetch(last_applied=None, allow_rewind=True)
        head: Head = judge(self.unit, revision, self.applier, renderer(None), datetime.now(UTC))
        result = (reconciler or self.reconciler).reconcile(self.unit, head=head)
        assert result.error is None, result.error
        return [(c.key.name, c.action) for c in result.changes]


@pytest.fixture
def loop(admin_api: client.ApiClient, namespace: str, tmp_path: Path, stop: threading.Event) -> Loop:
    served = Loop(admin_api, namespace, tmp_path, stop)
    served.commit({"apps/a.yaml": configmap("a")})
    assert served.pass_() == [("a", Action.CREATED)]
    eventually(lambda: served.store.recall(served.unit.name) is not None, 30, every=0.1)
    served.store.loads = 0
    return served


def test_a_pass_at_rest_reads_no_inventory(loop: Loop) -> None:
    for _ in range(3):
        assert loop.pass_() == [("a", Action.UNCHANGED)]
    assert loop.store.loads == 0, "the watch vouched for the inventory kept in memory"


def test_a_serviceaccount_the_token_controller_wrote_into_is_found_at_rest_once_and_then_reads_nothing(
    admin_api: client.ApiClient, namespace: str, loop: Loop
) -> None:
    """The token controller's write moves the ServiceAccount's resourceVersion away from the inventory's for
    good (a pass with nothing to do saves nothing): one pass renders and finds it still as applied, and the
    version it found is kept in memory, so the passes after it read nothing."""
    sa = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: robot}\nautomountServiceAccountToken: false\n"
    loop.commit({"apps/sa.yaml": sa})
    assert ("robot", Action.CREATED) in loop.pass_()
    core = client.CoreV1Api(admin_api)
    eventually(lambda: bool(core.read_namespaced_service_account("robot", namespace).secrets), 60, every=0.2)
    eventually(lambda: loop.store.recall(loop.unit.name) is not None, 30, every=0.1)
    assert set(loop.pass_()) == {("a", Action.UNCHANGED), ("robot", Action.UNCHANGED)}
    loop.store.loads = 0
    for _ in range(3):
        assert set(loop.pass_()) == {("a", Action.UNCHANGED), ("robot", Action.UNCHANGED)}
    assert loop.store.loads == 0


def test_an_inventory_another_replica_saved_is_read_before_pruning(
    admin_api: client.ApiClient, namespace: str, loop: Loop
) -> None:
    """Another replica, holding the unit's shard for a while, applied a commit that added ``b``; the next
    commit removes it. A pass deciding its prune from the inventory kept in memory (``a`` alone) would
    leave ``b`` in the cluster, owned by nobody."""
    loop.commit({"apps/b.yaml": configmap("b")})
    other = Reconciler(loop.source, Applier(admin_api), InventoryStore(admin_api), brake=OPEN_BRAKE)
    assert sorted(loop.pass_(other)) == [("a", Action.UNCHANGED), ("b", Action.CREATED)]
    loop.commit({"apps/b.yaml": None})
    assert ("b", Action.DELETED) in loop.pass_()
    core = client.CoreV1Api(admin_api)
    assert [meta(c).name for c in core.list_namespaced_config_map(namespace).items if meta(c).name == "b"] == []


def test_a_deleted_inventory_is_seen_and_written_again(admin_api: client.ApiClient, loop: Loop) -> None:
    core, name = client.CoreV1Api(admin_api), f"gitopsguard-inventory-{loop.unit.name}"
    core.delete_namespaced_config_map(name, loop.store.namespace)
    eventually(lambda: loop.store.recall(loop.unit.name) is None, 30, every=0.1)
    loop.pass_()
    assert loop.store.loads >= 1
    entries = loop.store.load(loop.unit.name).entries
    assert set(entries) == {ObjectKey("", "ConfigMap", loop.unit.default_namespace, "a")}


def test_nothing_is_recalled_without_the_watch(admin_api: client.ApiClient, loop: Loop) -> None:
    unwatched = InventoryStore(admin_api)
    unwatched.load(loop.unit.name)
    assert unwatched.recall(loop.unit.name) is None
