"""Rounds of the Units loop at rest.

The root path at rest is not rendered again: a fetch that finds the commit the root was judged at defers the
judging to a pass that needs the objects (``Fleet._root_judged``), as a Unit's is. Who would break it: a hand
edit of an object the root applied, at that same commit, which must still be repaired. A round lists the Units
only when the watch of the Units, or a status the loop wrote, says they changed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitopsguard import fleet_passes, fleet_root
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.cluster.units import LiveUnit, UnitStore
from gitopsguard.fleet import Fleet, accounts
from gitopsguard.heads import Head, judge
from gitopsguard.reconcile import ReconcileResult, Unit
from gitopsguard.source import GitSource, SourceSpec
from tests.gitrepo import Upstream
from tests.integration.test_units_crd import install_unit_crd
from tests.integration.test_units_loop import UNIT, configmap
from tests.waiting import eventually

pytestmark = pytest.mark.integration


class Judged:
    """``judge`` where the Units loop calls it (the root path's and a Unit's), counting the judgings of each unit."""

    def __init__(self) -> None:
        self.real, self.units = judge, list[str]()

    def __call__(self, unit: Unit, *args: Any) -> Head:
        self.units.append(unit.name)
        return self.real(unit, *args)


@pytest.fixture
def judged(monkeypatch: pytest.MonkeyPatch) -> Judged:
    counting = Judged()
    monkeypatch.setattr(fleet_root, "judge", counting)
    monkeypatch.setattr(fleet_passes, "judge", counting)
    return counting


@pytest.fixture
def served(admin_api: client.ApiClient, namespace: str, tmp_path: Path) -> Iterator[tuple[Fleet, list[str]]]:
    raw = RawApi(admin_api)
    install_unit_crd(raw)
    upstream = Upstream(tmp_path / "git")
    upstream.write("root/units.yaml", UNIT.format(name="apps", namespace=namespace, spec="{path: apps}"))
    upstream.write("root/own.yaml", configmap("root-own", namespace, "1"))
    upstream.write("apps/cm.yaml", configmap("apps", namespace, "1"))
    upstream.commit()
    results: list[ReconcileResult] = []
    own = Applier(admin_api)
    fleet = Fleet(Unit(f"{namespace}-root", "root", namespace, policies_path=None),
                  GitSource(SourceSpec(upstream.url), tmp_path / "gg"), own, InventoryStore(admin_api),
                  raw, interval=60, on_result=results.append, on_note=lambda _: None,
                  account_of=accounts(own))  # fmt: skip
    stop = threading.Event()
    thread = threading.Thread(target=fleet.run, args=(stop,), daemon=True)
    thread.start()
    yield fleet, [r.unit for r in results]
    stop.set()
    fleet.wake()
    thread.join(20)
    assert not thread.is_alive(), "the loop stops when asked"


def value(api: client.ApiClient, name: str, namespace: str) -> str | None:
    """The ConfigMap's value; None while it is not there."""
    try:
        found = client.CoreV1Api(api).read_namespaced_config_map(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return str((found.data or {}).get("value"))


def next_round(fleet: Fleet) -> None:
    """A fetch and a round, ended."""
    rounds = fleet.rounds
    fleet.wake()
    eventually(lambda: fleet.rounds > rounds, 30, every=0.05)


def settled(fleet: Fleet, judged: Judged, root: str) -> None:
    """Rounds until one neither renders nor judges the root. The Unit's status, written after the root applied
    it, moves an object the root owns; the round that finds it moved renders once and vouches for it. Which round
    that is depends on the load (a round in progress at a wake, a watch event a moment late), so up to 6."""
    for _ in range(6):
        judged.units.clear()
        next_round(fleet)
        next_round(fleet)  # the first may have been a round already under way at the wake
        if root not in judged.units:
            return
    raise AssertionError(f"the root was rendered and judged again in each of 6 rounds: {judged.units}")


def test_a_fetch_of_the_commit_the_root_was_judged_at_renders_nothing_and_an_edit_is_still_repaired(
    admin_api: client.ApiClient, namespace: str, served: tuple[Fleet, list[str]], judged: Judged
) -> None:
    fleet, _ = served
    root = f"{namespace}-root"
    eventually(lambda: fleet.policies is not None and root in judged.units and f"{namespace}.apps" in judged.units,
               60, every=0.2)  # fmt: skip
    eventually(lambda: value(admin_api, "apps", namespace) == "1", 60, every=0.2)
    settled(fleet, judged, root)  # the root finds the Unit's status written since it applied it: still as applied
    judged.units.clear()
    for _ in range(3):  # each wake fetches the branch again: the same commit
        next_round(fleet)
    assert root not in judged.units, "the root at rest was rendered and judged again"
    client.CoreV1Api(admin_api).patch_namespaced_config_map("root-own", namespace, {"data": {"value": "edited"}})
    eventually(lambda: value(admin_api, "root-own", namespace) == "1", 30, every=0.2)


class CountingUnits(UnitStore):
    """The real store, counting the lists of every Unit."""

    lists = 0

    def list(self, namespace: str | None = None) -> tuple[LiveUnit, ...]:
        self.lists += 1
        return super().list(namespace)


def test_rounds_at_rest_list_no_unit_and_a_suspension_by_hand_is_seen_by_the_next_round(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """Who would break it: a tenant who suspends (or edits) their Unit between two rounds; the watch of the Units
    must make the next round list them again, or the loop would serve a spec it no longer has."""
    raw = RawApi(admin_api)
    install_unit_crd(raw)
    upstream = Upstream(tmp_path / "git")
    upstream.write("root/units.yaml", UNIT.format(name="apps", namespace=namespace, spec="{path: apps}"))
    upstream.write("apps/cm.yaml", configmap("apps", namespace, "1"))
    upstream.commit()
    own, stop = Applier(admin_api), threading.Event()
    fleet = Fleet(Unit(f"{namespace}-root", "root", namespace, policies_path=None),
                  GitSource(SourceSpec(upstream.url), tmp_path / "gg"), own, InventoryStore(admin_api),
                  raw, interval=60, account_of=accounts(own))  # fmt: skip
    counting = CountingUnits(raw)
    fleet._units = counting
    units = client.CustomObjectsApi(admin_api)
    try:

        def round_then(reason: str) -> bool:
            fleet._round(stop)
            return ready_reason(UnitStore(raw), namespace) == reason

        eventually(lambda: round_then("ReconciliationSucceeded"), 60, every=0.2)

        def quiet_round() -> bool:
            counting.lists = 0
            fleet._round(stop)
            return counting.lists == 0

        eventually(quiet_round, 30, every=0.2)  # the statuses the first rounds wrote are listed once
        for _ in range(3):
            assert quiet_round(), "a round at rest listed the Units"
        units.patch_namespaced_custom_object("gitopsguard.io", "v1alpha1", namespace, "units", "apps",
                                             {"spec": {"suspend": True}})  # fmt: skip
        eventually(lambda: round_then("Suspended"), 30, every=0.2)
        assert counting.lists > 0
    finally:
        stop.set()


def ready_reason(store: UnitStore, namespace: str) -> str | None:
    conditions = store.get(namespace, "apps").status.get("conditions") or []
    return next((str(c.get("reason")) for c in conditions if c.get("type") == "Ready"), None)
