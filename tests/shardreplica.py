"""One replica of the shard Leases, as its own process (so a test can SIGKILL or SIGSTOP it): it runs the
rounds and, every few milliseconds, "acts" on each shard it holds, appending one JSON line per act to its
log: the shard, the tenure and the clock time at which ``holds`` was confirmed (CLOCK_BOOTTIME, the same
clock in every process of the machine). SIGTERM stops it cleanly, giving its shards back.

    python -m tests.shardreplica --kubeconfig K --namespace NS --log FILE [--shards 16] [--lease 4] ...

``Replicas`` starts and stops such processes; ``holders``, ``balanced`` and ``overlaps`` read the Leases
and the logs (for tests/integration/test_shard_leases.py and bench/shard_failover.py).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client

from gitopsguard.cluster import connect
from gitopsguard.cluster.rest import RawApi
from gitopsguard.cluster.shardleases import ShardLeases, ShardTiming, shard_api, shard_lease


def act(leases: ShardLeases, log: int) -> None:
    """One act on every shard we hold: the deadline read first, then the clock, so a process stopped in
    between finds the deadline passed; the line carries the time the check was made, not when it is written."""
    for shard in range(leases.shards):
        with leases.acting(shard) as claim:
            until = leases.deadline(claim) if claim is not None else None
            now = leases.clock()
            if claim is not None and until is not None and now < until:
                os.write(log, (json.dumps({"shard": shard, "term": claim.term, "at": now}) + "\n").encode())


@dataclass
class Replica:
    name: str
    log: Path
    process: subprocess.Popen[bytes]


class Replicas:
    """Replica processes in one namespace, each logging to ``folder/<name>.jsonl``."""

    def __init__(self, kubeconfig: Path, namespace: str, folder: Path, timing: ShardTiming) -> None:
        self.kubeconfig, self.namespace, self.folder, self.timing = kubeconfig, namespace, folder, timing
        self.all: dict[str, Replica] = {}

    def start(self, name: str, shards: int = 16) -> Replica:
        log = self.folder / f"{name}.jsonl"
        process = subprocess.Popen([
            sys.executable, "-m", "tests.shardreplica", "--kubeconfig", str(self.kubeconfig),
            "--namespace", self.namespace, "--log", str(log), "--name", name, "--shards", str(shards),
            "--lease", str(self.timing.lease_seconds), "--deadline", str(self.timing.renew_deadline),
            "--retry", str(self.timing.retry_seconds),
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


def holders(api: client.ApiClient, namespace: str, shards: int = 16) -> dict[int, tuple[str, str]]:
    """shard -> (holder, resourceVersion) of every shard Lease, read in one list."""
    listed = RawApi(api).get(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases")
    by_name = {item["metadata"]["name"]: item for item in listed["items"]}
    return {
        shard: (str(by_name[name]["spec"].get("holderIdentity") or ""), by_name[name]["metadata"]["resourceVersion"])
        for shard in range(shards)
        if (name := shard_lease(shard)) in by_name
    }


def held_by(api: client.ApiClient, namespace: str, names: set[str], shards: int = 16) -> dict[str, int]:
    """How many shards each of ``names`` holds; {} unless every shard is held by one of them."""
    seen = holders(api, namespace, shards)
    if len(seen) != shards or any(holder not in names for holder, _ in seen.values()):
        return {}
    return {name: sum(holder == name for holder, _ in seen.values()) for name in names}


def balanced(api: client.ApiClient, namespace: str, names: set[str], shards: int = 16) -> bool:
    """Every shard held, by one of ``names``, each holding some and at most its share (16 over 3: 6, 6, 4 is as
    settled as 6, 5, 5: nobody is over its share, so nobody gives one back)."""
    counts = held_by(api, namespace, names, shards)
    share = -(-shards // len(names))
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


def overlaps(acts: list[tuple[str, int, int, float]]) -> list[str]:
    """Every two tenures (of two replicas, or two of one) that acted on one shard at once."""
    found = []
    for shard, spans in intervals(acts).items():
        spans.sort()
        for before, after in itertools.pairwise(spans):
            if not before[1] < after[0]:
                found.append(f"shard {shard} acted on by {before[2:]} and {after[2:]} at once")
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--name", default=None)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--lease", type=int, default=4)
    parser.add_argument("--deadline", type=float, default=2.5)
    parser.add_argument("--retry", type=float, default=0.5)
    parser.add_argument("--every", type=float, default=0.05)
    o = parser.parse_args()
    timing = ShardTiming(lease_seconds=o.lease, renew_deadline=o.deadline, retry_seconds=o.retry)
    leases = ShardLeases(shard_api(connect(o.kubeconfig, "dev-admin"), timing), o.shards, me=o.name,
                         namespace=o.namespace, timing=timing)  # fmt: skip
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    rounds = leases.start(stop)
    log = os.open(o.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    while not stop.wait(o.every):
        act(leases, log)
    rounds.join()
    leases.release_all()
    os.close(log)


if __name__ == "__main__":
    main()
