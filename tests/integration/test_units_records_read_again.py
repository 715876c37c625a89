"""The Units a root served (``fleet_retire.Records``) are read again from the cluster, not only once. Under
``--shards`` each replica records the Units it serves in the one ConfigMap. Who breaks it: a replica that dies
after recording a Unit, then the Unit leaves the root path. The replica that takes the shard read the records
before the dead one wrote, so it would never see that record, never retire the Unit, and leave its objects
behind for as long as it wrote no record of its own."""

from __future__ import annotations

import pytest
from kubernetes import client

from gitopsguard.cluster.rest import RawApi
from gitopsguard.fleet_retire import Records
from gitopsguard.plan.retire import Served
from gitopsguard.units import UnitRef

pytestmark = pytest.mark.integration


def served(namespace: str, name: str) -> Served:
    return Served(UnitRef(namespace, name), name, None, prune=True, suspend=False, report_only=False,
                  origin="units.yaml:1")  # fmt: skip


def test_a_replica_sees_the_units_another_replica_recorded_once_its_copy_is_old(
    admin_api: client.ApiClient, namespace: str
) -> None:
    mine = Records(RawApi(admin_api), f"{namespace}.root", reread=0.0)
    theirs = Records(RawApi(admin_api), f"{namespace}.root")
    try:
        assert mine.get() == {}
        recorded = served(namespace, "b")
        theirs.change({recorded.ref: recorded})
        assert mine.get() == {recorded.ref: recorded}
    finally:
        theirs.change({}, drop=[UnitRef(namespace, "b")])


def test_records_read_again_unchanged_keep_their_version_so_a_quiet_round_stays_quiet(
    admin_api: client.ApiClient, namespace: str
) -> None:
    records = Records(RawApi(admin_api), f"{namespace}.root", reread=0.0)
    first = served(namespace, "a")
    records.change({first.ref: first})
    try:
        version = records.version
        assert records.get() == {first.ref: first}
        assert records.get() == {first.ref: first}
        assert records.version == version  # the retirer's "nothing gone" memo holds (``Retirer._none_gone``)
    finally:
        records.change({}, drop=[first.ref])


def test_within_its_reread_time_the_copy_in_memory_is_served_without_a_request(
    admin_api: client.ApiClient, namespace: str
) -> None:
    mine = Records(RawApi(admin_api), f"{namespace}.root", reread=3600.0)
    theirs = Records(RawApi(admin_api), f"{namespace}.root")
    assert mine.get() == {}
    recorded = served(namespace, "c")
    theirs.change({recorded.ref: recorded})
    try:
        assert mine.get() == {}  # read an hour from now, or at its own next write
    finally:
        theirs.change({}, drop=[recorded.ref])
