"""Red team, issue 19 (par19 with shards): a Unit's ``dependsOn`` holds at a new commit when its dependency is
served by another replica. Who: a second replica (``--shards``), with nothing hostile but timing: replica A holds
the dependent's shard, replica B the dependency's, and A's round comes first after a commit that changes both
Units' folders (the dependency adds what the dependent needs: a CRD, a Namespace, a Secret).

What must hold: the dependent applies the new commit only once its dependency has applied it, as in one replica
(its turn comes first in the round) and as Flux's ``dependsOn`` does for Kustomizations of one source (a
dependency whose ``lastAppliedRevision`` is not the source's revision is not ready). The dependency's status,
Ready for the spec it still has (its generation does not change with its folder), said nothing of the commit.

Two replicas, 8 shard Leases in the test's namespace, rounds run by hand (as ``test_units_retire.py``'s shard
test does), on the real API server."""

from __future__ import annotations

import threading
from pathlib import Path

from kubernetes import client

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.cluster.shardleases import ShardLeases, ShardTiming, shard_api
from gitopsguard.fleet import Fleet
from gitopsguard.plan.prune import BrakePolicy
from gitopsguard.reconcile import Unit
from gitopsguard.source import GitSource, SourceSpec
from gitopsguard.units.shards import shard_of
from tests.gitrepo import Upstream
from tests.integration.test_units_crd import install_unit_crd
from tests.integration.test_units_loop import UNIT, configmap
from tests.integration.test_units_retire import Repo
from tests.waiting import eventually

SHARDS = 8
CANDIDATES = [f"u{i}" for i in range(16)]


def _replicas(
    admin_api: client.ApiClient,
    namespace: str,
    tmp_path: Path,
    upstream: Upstream,
    stop: threading.Event,
    brake: BrakePolicy | None = None,
) -> list[tuple[Fleet, ShardLeases]]:
    timing = ShardTiming(lease_seconds=30, renew_deadline=20, retry_seconds=0.5)
    replicas = []
    for me in ("a", "b"):
        leases = ShardLeases(shard_api(admin_api, timing), SHARDS, me=me, namespace=namespace, timing=timing)
        replicas.append(
            (
                Fleet(
                    Unit(f"{namespace}-root", "root", namespace, policies_path=None),
                    GitSource(SourceSpec(upstream.url), tmp_path / f"gg-{me}"),
                    Applier(admin_api),
                    InventoryStore(admin_api),
                    RawApi(admin_api),
                    interval=60,
                    leases=leases,
                    brake=brake or BrakePolicy(),
                ),
                leases,
            )
        )
        leases.start(stop)
    return replicas


def test_a_dependent_on_one_replica_does_not_apply_a_commit_before_its_dependency_on_another(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    install_unit_crd(RawApi(admin_api))
    upstream = Upstream(tmp_path / "git")
    upstream.write("root/units.yaml", "# no Unit yet\n")
    upstream.commit()
    stop = threading.Event()
    replicas = _replicas(admin_api, namespace, tmp_path, upstream, stop)
    names: list[str] = []
    try:
        eventually(lambda: all(r[1].held() for r in replicas) and sum(len(r[1].held()) for r in replicas) == SHARDS,
                   30, every=0.2)  # fmt: skip
        on = {me: [n for n in CANDIDATES if shard_of(f"{namespace}.{n}", SHARDS) in leases.held()]
              for me, (_, leases) in zip("ab", replicas, strict=True)}  # fmt: skip
        infra, apps = on["b"][0], on["a"][0]  # the dependency on b, its dependent on a
        names += [infra, apps]
        upstream.write("root/units.yaml", UNIT.format(name=infra, namespace=namespace, spec=f"{{path: {infra}}}")
                       + UNIT.format(name=apps, namespace=namespace,
                                     spec=f"{{path: {apps}, dependsOn: [{{name: {infra}}}]}}"))  # fmt: skip
        for name in names:
            upstream.write(f"{name}/cm.yaml", configmap(name, namespace, "1"))
        upstream.commit("two Units, one needing the other")
        repo = Repo(upstream, namespace, admin_api, tmp_path)

        def round_of(fleet: Fleet) -> None:
            fleet.wake()
            fleet._round(stop)

        def all_served() -> bool:
            for fleet, _ in replicas:
                round_of(fleet)
            return repo.ready(infra) and repo.ready(apps)

        eventually(all_served, 90, every=0.2)
        for name in names:
            upstream.write(f"{name}/cm.yaml", configmap(name, namespace, "2"))
        upstream.commit("both change")
        round_of(replicas[0][0])  # the dependent's replica comes first
        assert repo.value(infra) == "1", "the dependency's replica has not served the commit"
        assert repo.value(apps) == "1", "the dependent applied a commit its dependency has not applied"
        round_of(replicas[1][0])
        round_of(replicas[0][0])
        assert (repo.value(infra), repo.value(apps)) == ("2", "2")
    finally:
        stop.set()
        for name in names:
            InventoryStore(admin_api).delete(f"{namespace}.{name}")
        InventoryStore(admin_api).delete(f"{namespace}-root")
