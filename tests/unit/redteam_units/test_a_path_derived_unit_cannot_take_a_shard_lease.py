"""A single unit's Lease never shares a name with the Units loop's shard or membership Leases.

``run --path PATH --leader-elect`` and a one-off ``reconcile`` hold Lease ``gitopsguard-<unit>`` in
gitopsguard-system, the unit's name derived from its path (``unit_name_for``); ``run --root --shards N`` keeps
``gitopsguard-shard-<k>`` and ``gitopsguard-replica-<digest>`` there (``cluster/shardleases.py``), and counts
every live ``gitopsguard-replica-*`` Lease as a replica of its own. A unit over a folder named ``shard/0``
contends for shard 0 with the Units loop (its Units go unserved while the unit leads), and one over
``replica/<20 hex digits>`` is counted as a replica that never takes its share of the shards. Such names are
refused at start (``--path`` and ``--unit``), naming the path or the option."""

from __future__ import annotations

import pytest

from gitopsguard.cluster.shardleases import REPLICA_PREFIX, SHARD_PREFIX
from gitopsguard.commands.reconcile_once import checked_unit_name, unit_name_for
from gitopsguard.commands.unit_lease import lease_name
from gitopsguard.errors import GitOpsGuardError


@pytest.mark.parametrize("path", ["shard/0", "shard-3", "Shard 12", "replica/0123456789abcdef0123"])
def test_a_unit_whose_lease_would_be_a_shard_or_replica_lease_is_refused(path: str) -> None:
    try:
        lease = lease_name(unit_name_for(path))
    except GitOpsGuardError as error:
        assert str(error).startswith(f"{path}: ") and "--unit" in str(error), error
        return
    assert not lease.startswith((SHARD_PREFIX, REPLICA_PREFIX)), f"--path {path} leads Lease {lease}"


@pytest.mark.parametrize("name", ["shard-0", "replica-0123456789abcdef0123"])
def test_a_unit_named_like_a_shard_lease_with_unit_is_refused(name: str) -> None:
    with pytest.raises(GitOpsGuardError, match=f"^--unit {name}: "):
        checked_unit_name(name, f"--unit {name}")


@pytest.mark.parametrize("path", ["apps/shop", "shards", "replicas/a", "teams/shard-0"])
def test_other_paths_still_name_their_unit(path: str) -> None:
    assert lease_name(unit_name_for(path)).startswith("gitopsguard-")
