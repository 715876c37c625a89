"""Issue 19's sharding numbers: how long a killed replica's shards take to move, and the Lease writes at rest.

    PYTHONPATH=$PWD .venv/bin/python bench/shard_failover.py [--kubeconfig PATH] [--replicas 3] [--shards 16]
        [--kills 3] [--lease 15 --deadline 10 --retry 2] [--rest 30]

Needs a running dev cluster. Starts ``--replicas`` replica processes (``tests/shardreplica.py``: the real
``ShardLeases`` rounds, each replica acting on its shards every 50 ms and logging it) in a Namespace of its
own (labelled ``gitopsguard.io/bench``, removed afterwards). At rest, counts every write to the Leases for
``--rest`` seconds from a watch (one event per stored write). Then, ``--kills`` times: SIGKILL one replica
(it gives nothing back), poll the Leases every 50 ms until every shard is held by a live replica, report the
time, and start a fresh replica. Finally checks the replicas' logs: no shard acted on by two at once.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubernetes import client

from gitopsguard.cluster import connect
from gitopsguard.cluster.rest import RawApi
from gitopsguard.cluster.shardleases import ShardTiming
from gitopsguard.devcluster import StateLayout
from tests.shardreplica import Replicas, balanced, held_by, overlaps

BENCH_LABEL = "gitopsguard.io/bench"


def wait_for(check: Callable[[], bool], timeout: float, every: float = 0.05) -> float:
    """Seconds until ``check()`` holds; ends the bench after ``timeout``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise SystemExit(f"not reached within {timeout} s")
        time.sleep(every)
    return time.monotonic() - start


def writes_at_rest(api: client.ApiClient, namespace: str, seconds: int) -> int:
    """Lease writes stored in ``seconds``: events of one watch from the current resourceVersion."""
    raw = RawApi(api)
    path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
    version = raw.get(path)["metadata"]["resourceVersion"]
    query = {"resourceVersion": version, "timeoutSeconds": str(seconds), "allowWatchBookmarks": "false"}
    return sum(event.get("type") == "MODIFIED" for event in raw.watch(path, query, read_timeout=seconds + 10))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubeconfig", type=Path, default=StateLayout.default().kubeconfig)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--lease", type=int, default=15)
    parser.add_argument("--deadline", type=float, default=10.0)
    parser.add_argument("--retry", type=float, default=2.0)
    parser.add_argument("--rest", type=int, default=30)
    o = parser.parse_args()
    timing = ShardTiming(o.lease, o.deadline, o.retry)
    api = connect(o.kubeconfig)
    core = client.CoreV1Api(api)
    namespace = f"shards-bench-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace, labels={BENCH_LABEL: "yes"})))
    with tempfile.TemporaryDirectory() as folder:
        replicas = Replicas(o.kubeconfig, namespace, Path(folder), timing)
        try:
            run(api, replicas, o, timing)
        finally:
            replicas.stop()
            core.delete_namespace(namespace)
        found = overlaps(replicas.acts())
        print(f"acts logged: {len(replicas.acts())}; shards acted on by two at once: {len(found)}")
        for line in found[:10]:
            print(f"  {line}")


def run(api: client.ApiClient, replicas: Replicas, o: argparse.Namespace, timing: ShardTiming) -> None:
    live = {f"r{i}" for i in range(o.replicas)}
    for name in sorted(live):
        replicas.start(name, o.shards)
    settled = wait_for(lambda: balanced(api, replicas.namespace, live, o.shards), 20 * o.lease)
    print(f"{o.replicas} replicas, {o.shards} shards, lease {o.lease} s / renew deadline {o.deadline} s / retry "
          f"{o.retry} s: every shard held and none over its share {settled:.1f} s after start")  # fmt: skip
    writes = writes_at_rest(api, replicas.namespace, o.rest)
    expected = (o.shards + o.replicas) / o.retry
    print(f"Lease writes at rest: {writes / o.rest:.2f}/s over {o.rest} s ((shards + replicas) / retry = "
          f"{expected:.2f}/s); Lease lists: {o.replicas / o.retry:.2f}/s")  # fmt: skip
    takeovers = []
    for kill in range(o.kills):
        victim = sorted(live)[0]
        replicas.all[victim].process.send_signal(signal.SIGKILL)
        live.discard(victim)
        takeovers.append(wait_for(lambda: bool(held_by(api, replicas.namespace, live, o.shards)), 3 * o.lease))
        print(f"kill {kill + 1}: {victim}'s shards held by the others {takeovers[-1]:.2f} s after its SIGKILL")
        replacement = f"r{o.replicas + kill}"
        replicas.start(replacement, o.shards)
        live.add(replacement)
        wait_for(lambda: balanced(api, replicas.namespace, live, o.shards), 20 * o.lease)
    if takeovers:
        print(f"takeover after SIGKILL: median {statistics.median(takeovers):.2f} s, max {max(takeovers):.2f} s "
              f"(lease {timing.lease_seconds} s)")  # fmt: skip


if __name__ == "__main__":
    main()
