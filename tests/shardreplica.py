"""One replica of the shard Leases, as its own process (so a test can SIGKILL or SIGSTOP it): it runs the
rounds and, every few milliseconds, "acts" on each shard it holds, appending one JSON line per act to its
log: the shard, the tenure and the clock time at which ``holds`` was confirmed (CLOCK_BOOTTIME, the same
clock in every process of the machine). SIGTERM stops it cleanly, giving its shards back.

    python -m tests.shardreplica --kubeconfig K --namespace NS --log FILE [--shards 16] [--lease 4] ...
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from pathlib import Path

from gitopsguard.cluster import connect
from gitopsguard.cluster.shardleases import ShardLeases, ShardTiming, shard_api


def act(leases: ShardLeases, log: int) -> None:
    """One act on every shard we hold: the deadline read first, then the clock, so a process stopped in
    between finds the deadline passed; the line carries the time the check was made, not when it is written."""
    for shard in range(leases.shards):
        with leases.acting(shard) as claim:
            until = leases.deadline(claim) if claim is not None else None
            now = leases.clock()
            if claim is not None and until is not None and now < until:
                os.write(log, (json.dumps({"shard": shard, "term": claim.term, "at": now}) + "\n").encode())


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
    parser.add_argument("--every", type=float, default=0.02)
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
