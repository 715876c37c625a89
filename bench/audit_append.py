"""What an audit append costs with the chain anchored in the cluster, against a file alone.

    .venv/bin/python bench/audit_append.py [--kubeconfig PATH] [--appends 300] [--replicas 2] [--threads 8]

- **file alone**: ``AuditLog`` appends of one record, fsynced (today's log, no anchor).
- **anchored, one writer**: ``AnchoredLog`` (file + standard output to /dev/null + the anchor ConfigMap), one
  record per append, one thread: the latency of an append (median, p99) and appends per second.
- **anchored, replicas**: ``--replicas`` processes' worth of AnchoredLogs (each its own writer, store, and
  file), each with ``--threads`` threads appending one record at a time, as admission does on several
  replicas: records per second in all, anchor writes (one per group commit) and conflicts (409s retried).

Works in a namespace of its own (the anchor ConfigMap there), deleted after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gitopsguard.audit import AuditLog
from gitopsguard.audit.anchor import AnchorStore
from gitopsguard.audit.copies import verify_copies
from gitopsguard.audit.durable import AnchoredLog
from gitopsguard.cluster import connect
from gitopsguard.cluster.rest import RawApi
from gitopsguard.devcluster import StateLayout

ENTRY = ("admission-denied", "admission", "abc123", "Pod/shop/web-7d4b9c", "GG1104 HIGH capabilities: NET_ADMIN added")


class Counting(RawApi):
    def __init__(self, api: Any) -> None:
        super().__init__(api, timeout=10)
        self.writes = self.refused = 0

    def request(self, method: str, path: str, **options: Any) -> tuple[int, dict[str, Any]]:
        status, body = super().request(method, path, **options)
        if method in ("PUT", "POST"):
            self.writes += 1
            self.refused += status == 409
        return status, body


def timed(append: Any, count: int) -> list[float]:
    took = []
    for _ in range(count):
        started = time.perf_counter()
        append([ENTRY])
        took.append(time.perf_counter() - started)
    return took


def show(name: str, took: list[float]) -> None:
    ordered = sorted(took)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(f"{name}: median {statistics.median(took) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms, "
          f"{len(took) / sum(took):.0f} appends/s")  # fmt: skip


def replicas(api: Any, namespace: str, folder: Path, count: int, threads: int, appends: int) -> None:
    raws = [Counting(api) for _ in range(count)]
    logs = [AnchoredLog(folder / f"replica-{i}.jsonl", AnchorStore(raw, namespace, "bench-anchor"),
                        echo=lambda _: None) for i, raw in enumerate(raws)]  # fmt: skip
    workers = [threading.Thread(target=timed, args=(log.append, appends // threads)) for log in logs
               for _ in range(threads)]  # fmt: skip
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    took = time.perf_counter() - started
    records = count * threads * (appends // threads)
    writes, refused = sum(r.writes for r in raws), sum(r.refused for r in raws)
    result = verify_copies([folder / f"replica-{i}.jsonl" for i in range(count)], anchor=logs[0].anchor.read())
    print(f"anchored, {count} replicas x {threads} threads: {records} records in {took:.2f} s = "
          f"{records / took:.0f} records/s; {writes} anchor writes ({records / max(writes - refused, 1):.1f} "
          f"records each), {refused} refused on conflict and retried; the copies verify: {result.ok}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubeconfig", type=Path, default=StateLayout.default().kubeconfig)
    parser.add_argument("--appends", type=int, default=300)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    api = connect(args.kubeconfig)
    raw = RawApi(api)
    namespace = f"bench-audit-{uuid.uuid4().hex[:8]}"
    raw.request("POST", "/api/v1/namespaces", body={"apiVersion": "v1", "kind": "Namespace",
                                                    "metadata": {"name": namespace}})  # fmt: skip
    try:
        with tempfile.TemporaryDirectory() as folder:
            show("file alone (fsync)", timed(AuditLog(Path(folder) / "plain.jsonl").append, args.appends))
            anchored = AnchoredLog(Path(folder) / "one.jsonl", AnchorStore(RawApi(api, timeout=10), namespace),
                                   echo=lambda _: None)  # fmt: skip
            show("anchored, one writer", timed(anchored.append, args.appends))
            replicas(api, namespace, Path(folder), args.replicas, args.threads, args.appends)
    finally:
        raw.request("DELETE", f"/api/v1/namespaces/{namespace}")
    print(f"(cpu count {os.cpu_count()}, load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
