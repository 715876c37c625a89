"""A tenant with ``edit`` in one namespace, and no Unit at all, drives the Units loop.

The loop watches every object that carries a unit label, in every namespace (one informer per kind,
``cluster/livecache.SharedLiveCache``), and an event on an object filed under one of its Units' ids wakes a
round at once (``fleet.Fleet._moved``). Anyone who may label an object may file it under any id: the ids are
readable (``NAMESPACE.NAME``, in every label of what the Units apply). Each round lists every Unit and reads
the root's inventory (0.5 CPU-seconds a round at 1,000 Units, ``docs/units.md``), so one patch of the
tenant's own ConfigMap bought one round, as fast as the tenant could patch."""

from __future__ import annotations

import time

from kubernetes import client

from gitopsguard.model import UNIT_LABEL
from tests.integration.redteam_units.conftest import Alice
from tests.integration.test_units_loop import Running
from tests.waiting import eventually

PATCHES = 120


def test_a_tenant_patching_an_object_labelled_with_a_units_id_wakes_at_most_two_rounds_a_second(
    running: Running, alice: Alice, namespace: str
) -> None:
    eventually(lambda: running.ready("apps").get("status") == "True", 60, every=0.5)
    eventually(lambda: ("v1", "ConfigMap") in running.fleet.watched_kinds(), 30, every=0.5)
    core = client.CoreV1Api(alice.api)
    bait = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="bait", labels={UNIT_LABEL: f"{namespace}.apps"}))
    core.create_namespaced_config_map(alice.namespace, bait)
    time.sleep(3)  # the creation's own round, and the quiet one after it
    rounds, started = running.fleet.rounds, time.monotonic()
    for n in range(PATCHES):
        core.patch_namespaced_config_map("bait", alice.namespace, {"data": {"n": str(n)}})
    time.sleep(1)
    seconds = time.monotonic() - started
    woken = running.fleet.rounds - rounds
    assert woken <= 2 * seconds + 2, f"{PATCHES} patches by a tenant in {seconds:.1f} s woke {woken} rounds"
