"""Red team, issue 19 (gc19 with shards): a Unit renamed in the root path (its folder unchanged), or moved (a new
name and a new folder holding the same objects), when the old name's shard and the new name's are held by
different replicas. Who: a commit that merely renames or moves a Unit, and a second replica (``--shards``). The
old name retires on the replica that holds its shard (here the root's), after that replica's passes; the new
name's pass, which relabels the objects, runs on the other replica, later. The old name's retirement used to find
them still labelled its own and delete them, and the new name's pass created them again (new uids, every Pod
gone). What must hold: the objects the new name declares keep their uid; the old name still retires (its
inventory goes). In one replica the retirement runs after the round's passes anyway
(``test_a_renamed_unit_keeps_its_objects.py``).

Two replicas, 8 shard Leases in the test's namespace, rounds run by hand, the root's replica first, on the real
API server."""

from __future__ import annotations

import threading
from pathlib import Path

from kubernetes import client

from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.fleet import Fleet
from gitopsguard.model import UNIT_LABEL
from gitopsguard.plan.prune import BrakePolicy
from gitopsguard.units.shards import shard_of
from tests.gitrepo import Upstream
from tests.integration.redteam_today.test_a_dependent_waits_for_its_dependency_on_another_replica import (
    CANDIDATES,
    SHARDS,
    _replicas,
)
from tests.integration.test_units_crd import install_unit_crd
from tests.integration.test_units_loop import UNIT, configmap
from tests.integration.test_units_retire import Repo
from tests.kube import meta
from tests.waiting import eventually


def test_a_unit_renamed_across_replicas_deletes_none_of_the_objects_its_new_name_declares(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    _renamed_keeps_its_objects(admin_api, namespace, tmp_path, moved=False)


def test_a_unit_moved_to_a_new_name_and_folder_across_replicas_deletes_none_of_the_objects_it_declares(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    _renamed_keeps_its_objects(admin_api, namespace, tmp_path, moved=True)


def test_a_unit_renamed_then_removed_before_its_new_name_took_its_objects_over_deletes_them(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """The old name's inventory stays the handle on what it applied until another Unit has taken it over: the
    new name leaving before its first pass leaves nothing behind, labelled with a name nobody serves."""
    _renamed_keeps_its_objects(admin_api, namespace, tmp_path, moved=False, then_removed=True)


def _object(api: client.ApiClient, namespace: str) -> tuple[str, str] | None:
    """The uid and unit label of the ConfigMap ``team`` (None when it is gone)."""
    try:
        found = meta(client.CoreV1Api(api).read_namespaced_config_map("team", namespace))
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise
    return str(found.uid), str((found.labels or {}).get(UNIT_LABEL))


def _renamed_keeps_its_objects(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path, *, moved: bool, then_removed: bool = False
) -> None:
    install_unit_crd(RawApi(admin_api))
    upstream = Upstream(tmp_path / "git")
    upstream.write("root/units.yaml", "# no Unit yet\n")
    upstream.write("team/cm.yaml", configmap("team", namespace, "1"))
    # objects of the root's own, so that its brake lets it prune the old name's Unit object (1 of 5)
    upstream.write("root/own.yaml", "---\n".join(configmap(f"root-{i}", namespace, "1") for i in range(4)))
    upstream.commit()
    stop = threading.Event()
    # one Unit of one object: the brake over retirements (1 of 1) would hold; among many Units a rename is a few
    replicas = _replicas(admin_api, namespace, tmp_path, upstream, stop, brake=BrakePolicy(max_fraction=1.0))
    names: list[str] = []
    try:
        eventually(lambda: all(r[1].held() for r in replicas) and sum(len(r[1].held()) for r in replicas) == SHARDS,
                   30, every=0.2)  # fmt: skip
        root = next(r for r in replicas if shard_of(f"{namespace}-root", SHARDS) in r[1].held())
        other = next(r for r in replicas if r is not root)
        on = {id(r): [n for n in CANDIDATES if shard_of(f"{namespace}.{n}", SHARDS) in r[1].held()] for r in replicas}
        old, new = on[id(root)][0], on[id(other)][0]  # the old name retires where the root applies the rename
        names += [old, new]
        upstream.write("root/units.yaml", UNIT.format(name=old, namespace=namespace, spec="{path: team}"))
        upstream.commit("the team's Unit")
        repo = Repo(upstream, namespace, admin_api, tmp_path)

        def round_of(fleet: Fleet) -> None:
            fleet.wake()
            fleet._round(stop)

        def all_served(name: str) -> bool:
            for fleet, _ in (root, other):
                round_of(fleet)
            return repo.ready(name)

        eventually(lambda: all_served(old), 90, every=0.2)
        before = str(meta(client.CoreV1Api(admin_api).read_namespaced_config_map("team", namespace)).uid)
        folder = "moved" if moved else "team"
        if moved:
            upstream.remove("team/cm.yaml")
            upstream.write("moved/cm.yaml", configmap("team", namespace, "1"))
        upstream.write("root/units.yaml", UNIT.format(name=new, namespace=namespace, spec=f"{{path: {folder}}}"))
        upstream.commit(f"{old} becomes {new} in {folder}")
        round_of(root[0])  # the root applies the change and the old name retires: its new name is not served yet
        assert not repo.unit_exists(old) and _object(admin_api, namespace) == (before, f"{namespace}.{old}")
        assert repo.inventory(old), "the old name's retirement waits for its objects to be taken over"
        if then_removed:
            upstream.write("root/units.yaml", "# no Unit\n")
            upstream.commit(f"{new} leaves too")
            round_of(root[0])
            assert _object(admin_api, namespace) is None and not repo.inventory(old), "the old name's retirement ends"
            return
        eventually(lambda: all_served(new) and not repo.inventory(old), 90, every=0.2)
        after = _object(admin_api, namespace)
        assert after == (before, f"{namespace}.{new}"), "the new name took it over, and nothing deleted it"
    finally:
        stop.set()
        for name in names:
            InventoryStore(admin_api).delete(f"{namespace}.{name}")
        InventoryStore(admin_api).delete(f"{namespace}-root")
