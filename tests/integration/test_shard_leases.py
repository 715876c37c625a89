"""Shard Leases on the real API server: replicas as processes of their own (``tests/shardreplica.py``), 16
shards, leases of 4 s renewed every 0.5 s and given up 2.5 s after the last renewal that went through.

Every replica logs each act with the clock time its ownership check was made; ``assert_no_overlap`` proves
from those logs that no shard was acted on by two replicas (or two tenures) at once, whatever happened: a
SIGKILL, a SIGSTOP longer than the lease, a replica joining."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.cluster.rest import RawApi
from gitopsguard.cluster.shardleases import shard_lease, steady
from tests.integration.conftest import LiveCluster
from tests.waiting import eventually

pytestmark = pytest.mark.integration
SHARDS, LEASE, DEADLINE, RETRY = 16, 4, 2.5, 0.5


@dataclass
class Replica:
    name: str
    log: Path
    process: subprocess.Popen[bytes]


class Replicas:
    def __init__(self, cluster: LiveCluster, namespace: str, folder: Path) -> None:
        self.cluster, self.namespace, self.folder = cluster, namespace, folder
        self.all: dict[str, Replica] = {}

    def start(self, name: str, shards: int = SHARDS) -> Replica:
        log = self.folder / f"{name}.jsonl"
        process = subprocess.Popen([
            sys.executable, "-m", "tests.shardreplica", "--kubeconfig", str(self.cluster.kubeconfig),
            "--namespace", self.namespace, "--log", str(log), "--name", name, "--shards", str(shards),
            "--lease", str(LEASE), "--deadline", str(DEADLINE), "--retry", str(RETRY),
        ], env=dict(os.environ))  # fmt: skip
        self.all[name] = Replica(name, log, process)
        return self.all[name]

    def stop(self, *names: str) -> None:
        """SIGTERM (a clean stop: shards given back) to these replicas, or all; wait for them to end."""
        chosen = [self.all[name] for name in names] if names else list(self.all.values())
        for replica in chosen:
            if replica.process.poll() is None:
                replica.process.send_signal(signal.SIGCONT)
                replica.process.send_signal(signal.SIGTERM)
        for replica in chosen:
            replica.process.wait(timeout=20)

    def acts(self) -> list[tuple[str, int, int, float]]:
        """(replica, shard, term, clock time of the check) of every act logged."""
        found = []
        for replica in self.all.values():
            for line in replica.log.read_text().splitlines() if replica.log.exists() else []:
                act = json.loads(line)
                found.append((replica.name, int(act["shard"]), int(act["term"]), float(act["at"])))
        return found


@pytest.fixture
def replicas(dev_cluster: LiveCluster, namespace: str, tmp_path: Path) -> Iterator[Replicas]:
    started = Replicas(dev_cluster, namespace, tmp_path)
    yield started
    started.stop()


def holders(api: client.ApiClient, namespace: str, shards: int = SHARDS) -> dict[int, tuple[str, str]]:
    """shard -> (holder, resourceVersion) of every shard Lease, read in one list."""
    listed = RawApi(api).get(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases")
    by_name = {item["metadata"]["name"]: item for item in listed["items"]}
    return {
        shard: (str(by_name[name]["spec"].get("holderIdentity") or ""), by_name[name]["metadata"]["resourceVersion"])
        for shard in range(shards)
        if (name := shard_lease(shard)) in by_name
    }


def held_by(api: client.ApiClient, namespace: str, names: set[str]) -> dict[str, int]:
    """How many shards each of ``names`` holds; {} unless every shard is held by one of them."""
    seen = holders(api, namespace)
    if len(seen) != SHARDS or any(holder not in names for holder, _ in seen.values()):
        return {}
    return {name: sum(holder == name for holder, _ in seen.values()) for name in names}


def balanced(api: client.ApiClient, namespace: str, names: set[str]) -> bool:
    """Every shard held, by one of ``names``, each holding some and at most its share (16 over 3: 6, 6, 4 is as
    settled as 6, 5, 5: nobody is over its share, so nobody gives one back)."""
    counts = held_by(api, namespace, names)
    share = -(-SHARDS // len(names))
    return bool(counts) and all(1 <= n <= share for n in counts.values())


def intervals(acts: list[tuple[str, int, int, float]]) -> dict[int, list[tuple[float, float, str, int]]]:
    """shard -> (first, last, replica, term) of every tenure that acted on it."""
    spans: dict[tuple[str, int, int], list[float]] = defaultdict(list)
    for name, shard, term, at in acts:
        spans[(name, shard, term)].append(at)
    found: dict[int, list[tuple[float, float, str, int]]] = defaultdict(list)
    for (name, shard, term), times in spans.items():
        found[shard].append((min(times), max(times), name, term))
    return found


def assert_no_overlap(acts: list[tuple[str, int, int, float]]) -> None:
    for shard, spans in intervals(acts).items():
        spans.sort()
        for before, after in itertools.pairwise(spans):
            assert before[1] < after[0], f"shard {shard} acted on by {before[2:]} and {after[2:]} at once"


def test_three_replicas_hold_every_shard_once_and_a_killed_one_s_shards_move_within_the_lease(
    replicas: Replicas, admin_api: client.ApiClient, namespace: str
) -> None:
    for name in ("a", "b", "c"):
        replicas.start(name)
    eventually(lambda: balanced(admin_api, namespace, {"a", "b", "c"}), 30, every=0.2)
    counts = held_by(admin_api, namespace, {"a", "b", "c"})
    assert sorted(counts.values()) in ([5, 5, 6], [4, 6, 6]), counts
    replicas.all["c"].process.send_signal(signal.SIGKILL)  # no release: its Leases must run out
    killed = time.monotonic()
    eventually(lambda: bool(held_by(admin_api, namespace, {"a", "b"})), LEASE + 10, every=0.05)
    takeover = time.monotonic() - killed
    assert takeover <= LEASE + 1.0, takeover  # within the lease, plus a round on a loaded 2-core machine
    eventually(lambda: balanced(admin_api, namespace, {"a", "b"}), 10, every=0.2)
    replicas.stop()
    acts = replicas.acts()
    assert {name for name, *_ in acts} == {"a", "b", "c"}
    assert_no_overlap(acts)
    print(f"takeover after SIGKILL: {takeover:.2f} s (lease {LEASE} s)")


def test_a_paused_replica_does_not_act_on_shards_it_lost(
    replicas: Replicas, admin_api: client.ApiClient, namespace: str
) -> None:
    for name in ("a", "b", "c"):
        replicas.start(name)
    eventually(lambda: balanced(admin_api, namespace, {"a", "b", "c"}), 30, every=0.2)
    paused = replicas.all["c"].process
    stopped_at = steady()
    paused.send_signal(signal.SIGSTOP)  # as a frozen VM or a long stall would: it renews nothing, knows nothing
    eventually(lambda: bool(held_by(admin_api, namespace, {"a", "b"})), LEASE + 10, every=0.05)
    time.sleep(1)
    resumed_at = steady()
    paused.send_signal(signal.SIGCONT)
    eventually(lambda: balanced(admin_api, namespace, {"a", "b", "c"}), 30, every=0.2)  # it gets a share back
    replicas.stop()
    acts = replicas.acts()
    old_terms = {(shard, term) for name, shard, term, at in acts if name == "c" and at < stopped_at}
    late = [act for act in acts if act[0] == "c" and act[1:3] in old_terms and act[3] >= stopped_at + DEADLINE]
    assert old_terms and not late, late[:5]  # nothing under a tenure from before the stop, once it ran out
    assert any(act[0] == "c" and act[3] > resumed_at for act in acts)  # it acts again, under new tenures
    assert_no_overlap(acts)


def test_scaling_up_from_two_to_three_hands_shards_over_without_two_holders_at_once(
    replicas: Replicas, admin_api: client.ApiClient, namespace: str
) -> None:
    replicas.start("a")
    replicas.start("b")
    eventually(lambda: balanced(admin_api, namespace, {"a", "b"}), 30, every=0.2)
    samples: list[tuple[float, float, dict[int, tuple[str, str]]]] = []
    replicas.start("c")
    deadline = time.monotonic() + 30
    while not balanced(admin_api, namespace, {"a", "b", "c"}):
        assert time.monotonic() < deadline, "not rebalanced within 30 s"
        before = steady()
        seen = holders(admin_api, namespace)
        samples.append((before, steady(), seen))
    replicas.stop()
    acts = replicas.acts()
    assert_no_overlap(acts)
    assert_acts_agree_with_samples(acts, samples)
    assert any(name == "c" for name, *_ in acts)


def assert_acts_agree_with_samples(
    acts: list[tuple[str, int, int, float]], samples: list[tuple[float, float, dict[int, tuple[str, str]]]]
) -> None:
    """Between two reads that found a shard's Lease unchanged (same resourceVersion) and held by H (from the
    end of the first read to the start of the second: a read is true at one moment within it), nobody but H
    acted on that shard: the sampled Leases and the replicas' own logs tell the same story."""
    by_shard: dict[int, list[tuple[str, float]]] = defaultdict(list)
    for name, shard, _, at in acts:
        by_shard[shard].append((name, at))
    for (_, t1, first), (t2, _, second) in itertools.pairwise(samples):
        for shard, (holder, version) in first.items():
            if second.get(shard) != (holder, version):
                continue
            intruders = [(name, at) for name, at in by_shard[shard] if name != holder and t1 < at < t2]
            assert not intruders, f"shard {shard} held by {holder!r} from {t1} to {t2}, yet acted on by {intruders}"


def test_a_replica_counting_the_shards_otherwise_takes_none_while_one_of_the_old_count_lives(
    replicas: Replicas, admin_api: client.ApiClient, namespace: str
) -> None:
    # With 32 shards instead of 16 a unit's shard differs: the newcomer would find shards 16-31 free and act
    # on units the old replica serves. It waits until the old count's replicas are gone.
    replicas.start("old")
    eventually(lambda: balanced(admin_api, namespace, {"old"}), 30, every=0.2)
    replicas.start("new", shards=32)
    time.sleep(3 * RETRY + 2)
    assert held_by(admin_api, namespace, {"old"}) == {"old": SHARDS}
    assert not [act for act in replicas.acts() if act[0] == "new"]
    replicas.stop("old")
    eventually(lambda: [h for h, _ in holders(admin_api, namespace, 32).values()] == ["new"] * 32, 10, every=0.1)
    replicas.stop()
    acts = replicas.acts()
    last_old = max(at for name, *_, at in acts if name == "old")
    first_new = min(at for name, *_, at in acts if name == "new")
    assert last_old < first_new
