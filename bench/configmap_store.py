"""What the one ConfigMap store costs on the dev cluster: concurrent writers on one ConfigMap, and a value in parts.

    .venv/bin/python bench/configmap_store.py [--kubeconfig PATH] [--writers 8] [--increments 25]
                                              [--megabytes 3] [--rounds 5]

Writers: ``--writers`` threads, one store, each adding one to a counter ``--increments`` times; prints the wall
time, the final count (it must be writers x increments) and how many writes the server refused with 409 (each
retried on a fresh read). Parts: a value of ``--megabytes`` of random bytes (incompressible) written and read
back by another store, median over ``--rounds``. Works in a namespace of its own, deleted after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gitopsguard.cluster import connect
from gitopsguard.cluster.configmaps import ConfigMapStore, Content, Packed, Stored
from gitopsguard.cluster.rest import RawApi
from gitopsguard.devcluster import StateLayout


class Counting(RawApi):
    def __init__(self, api: Any) -> None:
        super().__init__(api)
        self.refused = 0

    def request(self, method: str, path: str, **options: Any) -> tuple[int, dict[str, Any]]:
        status, body = super().request(method, path, **options)
        if method in ("PUT", "POST") and status == 409:
            self.refused += 1
        return status, body


def _count(stored: Stored | None) -> Content:
    return Content({"n": str(int(stored.content.data["n"]) + 1 if stored else 1)})


def writers(api: Any, namespace: str, count: int, increments: int) -> None:
    raw = Counting(api)
    store = ConfigMapStore(raw, namespace)
    threads = [threading.Thread(target=lambda: [store.update("counter", _count) for _ in range(increments)])
               for _ in range(count)]  # fmt: skip
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.perf_counter() - started
    final = ConfigMapStore(RawApi(api), namespace).read("counter")
    total = final.content.data["n"] if final else "none"
    print(f"{count} writers x {increments} increments: {took:.2f} s, count {total} (expected {count * increments}), "
          f"{raw.refused} writes refused with 409 and retried")  # fmt: skip


def parts(api: Any, namespace: str, megabytes: int, rounds: int) -> None:
    writes, reads = [], []
    for _ in range(rounds):
        blob = os.urandom(megabytes * 1024 * 1024)
        started = time.perf_counter()
        ConfigMapStore(RawApi(api), namespace).put("big", Content({}, {"blob.gz": Packed.of(blob)}))
        writes.append(time.perf_counter() - started)
        started = time.perf_counter()
        stored = ConfigMapStore(RawApi(api), namespace).read("big")
        reads.append(time.perf_counter() - started)
        if stored is None or stored.blob("blob.gz") != blob:
            raise SystemExit("the value read back is not the one written")
    print(f"{megabytes} MiB in parts over {rounds} rounds (compression included): write median "
          f"{statistics.median(writes):.3f} s, read median {statistics.median(reads):.3f} s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubeconfig", type=Path, default=StateLayout.default().kubeconfig)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--increments", type=int, default=25)
    parser.add_argument("--megabytes", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    api = connect(args.kubeconfig)
    namespace = f"bench-cm-{uuid.uuid4().hex[:8]}"
    try:
        writers(api, namespace, args.writers, args.increments)
        parts(api, namespace, args.megabytes, args.rounds)
    finally:
        RawApi(api).request("DELETE", f"/api/v1/namespaces/{namespace}")


if __name__ == "__main__":
    main()
