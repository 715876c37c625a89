"""Issue 21's tenant flood: a tenant creates 5,000 non-compliant Pods (250-character names) in one namespace.

    PYTHONPATH=. .venv/bin/python bench/scan_flood.py [--kubeconfig PATH] [--pods 5000]

Needs a running dev cluster (the Pods stay Pending: it has no kubelet). Three other namespaces hold three
non-compliant Pods each. A live scan of those four namespaces runs in this process until every finding is
announced and written; then it prints:
  * the first scan's time, and this process's peak RSS (target: under 300 MB);
  * the size of each namespace's live-scan state ConfigMap, and whether the quiet namespaces' state holds
    all their workloads (target: intact);
  * the PolicyReport parts of the flooded namespace, their sizes, and how many of the 5,000 findings they
    hold (target: all);
  * the problems the scan reported, and how often the state was written while idle (target: never).
Removes its namespaces and their state afterwards.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import resource
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gitopsguard.cluster import connect
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.rest import RawApi
from gitopsguard.devcluster import StateLayout
from gitopsguard.policy import parse_policies
from gitopsguard.scan.scanner import Scanner
from gitopsguard.scan.state import state_name
from tests.flood import flood, make_namespace
from tests.policies import team_label_policy

POLICY = team_label_policy("24h")
STATE = "/api/v1/namespaces/gitopsguard-system/configmaps"


class CountingApi(RawApi):
    def __init__(self, api: Any) -> None:
        super().__init__(api)
        self.state_writes: list[float] = []

    def request(self, method: str, path: str, **options: Any) -> tuple[int, dict[str, Any]]:
        if method != "GET" and path.startswith(f"{STATE}/gitopsguard-live-scan"):
            self.state_writes.append(time.monotonic())
        return super().request(method, path, **options)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubeconfig", type=Path, default=StateLayout.default().kubeconfig)
    parser.add_argument("--pods", type=int, default=5000)
    args = parser.parse_args()
    api = connect(args.kubeconfig)
    raw = CountingApi(api)
    run = uuid.uuid4().hex[:6]
    flooded, quiet = f"flood-{run}", [f"quiet-{run}-{i}" for i in range(3)]
    try:
        measure(api, raw, flooded, quiet, args.pods)
    finally:
        for namespace in (flooded, *quiet):
            raw.request("DELETE", f"/api/v1/namespaces/{namespace}")
            raw.request("DELETE", f"{STATE}/{state_name(namespace)}")


def measure(api: Any, raw: CountingApi, flooded: str, quiet: list[str], pods: int) -> None:
    for namespace in (flooded, *quiet):
        make_namespace(raw, namespace)
    started = time.perf_counter()
    flood(raw, flooded, pods)
    print(f"created {pods} Pods in {flooded} in {time.perf_counter() - started:.1f} s; RSS so far {rss_mb():.0f} MB")
    for namespace in quiet:
        flood(raw, namespace, 3, length=30)
    heard: list[Any] = []
    scanner = Scanner(Applier(api), raw, parse_policies({"p.yaml": POLICY}),
                      backup_dir=Path(tempfile.gettempdir()) / "tenant-flood", namespaces=frozenset({flooded, *quiet}),
                      announce=heard.extend)  # fmt: skip
    started = time.perf_counter()
    scanner.scan_all()
    print(f"first scan: {time.perf_counter() - started:.1f} s, {scanner.evaluations} evaluated, "
          f"{scanner.non_compliant} non-compliant")  # fmt: skip
    stop = threading.Event()
    threading.Thread(target=scanner.run, args=(stop,), daemon=True).start()
    drained = scanner.drain(300)
    idle = time.monotonic()
    time.sleep(5)
    stop.set()
    print(f"reports and events written: {drained}; peak RSS {rss_mb():.0f} MB (target: under 300 MB)")
    print(f"state writes while idle for 5 s: {len([t for t in raw.state_writes if t >= idle])} (target: 0)")
    for namespace in (flooded, *quiet):
        print(state_of(raw, namespace))
    reports(raw, flooded, pods)
    for problem in scanner.problems:
        print(f"problem: {problem[:300]}")


def state_of(raw: RawApi, namespace: str) -> str:
    status, configmap = raw.request("GET", f"{STATE}/{state_name(namespace)}")
    if status != 200:
        return f"state of {namespace}: MISSING (HTTP {status})"
    packed = (configmap.get("binaryData") or {}).get("tracked.json.gz", "")
    rows = json.loads(gzip.decompress(base64.b64decode(packed)))
    data = configmap.get("data") or {}
    return (f"state of {namespace}: {len(rows)} workloads remembered, {data.get('leftOut')} left out, "
            f"{len(packed) / 1024:.0f} KiB")  # fmt: skip


def reports(raw: RawApi, namespace: str, pods: int) -> None:
    status, listed = raw.request("GET", f"/apis/wgpolicyk8s.io/v1alpha2/namespaces/{namespace}/policyreports")
    if status != 200:
        print(f"PolicyReports of {namespace}: HTTP {status} (is the CRD installed? kubectl apply -f manifests/crds/)")
        return
    items = listed.get("items") or []
    sizes = [len(json.dumps(item)) // 1024 for item in items]
    total = sum(len(item.get("results") or []) for item in items)
    print(f"PolicyReports of {namespace}: {len(items)} parts of {sizes} KiB, {total} of {pods} findings (target: all)")


if __name__ == "__main__":
    main()
