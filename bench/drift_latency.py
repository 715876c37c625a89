"""Drift repair latency (issue 4): from a live `kubectl patch` to the restored object, over 20 edits.

    .venv/bin/python bench/drift_latency.py [--kubeconfig PATH] [--edits 20]

Needs a running dev cluster. Runs the continuous loop on a unit of 2,020 objects (as in apply_2000.py),
then patches one ConfigMap at a time with kubectl and times from the patch's return until the loop has
put it back, reading the object through the API every 10 ms (``--poll-with-kubectl`` reads it with one
`kubectl get` after another, as runs before 2026-11-30 did: each start of kubectl adds up to its own
run time, 0.1-0.4 s, to a measurement). Removes its namespaces after.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.apply_2000 import objects
from gitopsguard.cluster import connect
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import Inventory, InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.controller import Controller
from gitopsguard.devcluster import StateLayout
from gitopsguard.reconcile import Unit
from gitopsguard.source import GitSource, SourceSpec
from tests.gitrepo import Upstream
from tests.kubectl import kubectl


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubeconfig", type=Path, default=StateLayout.default().kubeconfig)
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--poll-with-kubectl", action="store_true", help="read with `kubectl get`, not the API")
    args = parser.parse_args()
    api = connect(args.kubeconfig)
    InventoryStore(api).save("drift", Inventory())  # each run starts from a fresh repository history
    kube = [kubectl(), "--kubeconfig", str(args.kubeconfig)]
    with tempfile.TemporaryDirectory() as tmp:
        upstream = Upstream(Path(tmp) / "git")
        prefix = f"drift-{int(time.time()) % 100_000:05d}"  # fresh names: see apply_2000.py
        upstream.write("apps/all.yaml", yaml.safe_dump_all(objects(prefix)))
        upstream.commit()
        passes: list[object] = []
        controller = Controller(Unit("drift", "apps"), GitSource(SourceSpec(upstream.url), Path(tmp) / "gg"),
                                Applier(api), InventoryStore(api), RawApi(api), interval=300,
                                on_result=passes.append)  # fmt: skip
        stop = threading.Event()
        thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
        thread.start()
        while not any(getattr(p, "changes", ()) for p in passes):  # the first passes may only hold (no head yet)
            time.sleep(0.2)
        time.sleep(5)  # let the passes caused by our own writes settle
        latencies, raw = [], RawApi(api)

        def read(namespace: str, name: str) -> str | None:
            """The edited ConfigMap's value now: through the API, or with one `kubectl get`."""
            if args.poll_with_kubectl:
                get = [*kube, "get", "configmap", name, "-n", namespace, "-o", "jsonpath={.data.key}"]
                return subprocess.run(get, capture_output=True, text=True).stdout
            status, body = raw.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}")
            return (body.get("data") or {}).get("key") if status == 200 else None

        for i in range(args.edits):
            namespace, name = f"{prefix}-{i % 20:02d}", f"cm-{i}"
            patch = ["patch", "configmap", name, "-n", namespace, "--type", "merge", "-p", '{"data":{"key":"edited"}}']
            subprocess.run([*kube, *patch], check=True, capture_output=True)
            start = time.perf_counter()
            while read(namespace, name) != f"value-{i}":
                if not args.poll_with_kubectl:
                    time.sleep(0.01)
            latencies.append(time.perf_counter() - start)
        stop.set()
        controller.wake()
        thread.join(30)
    latencies.sort()
    p95 = latencies[max(0, round(0.95 * len(latencies)) - 1)]
    median = statistics.median(latencies)
    print(f"drift repair over {len(latencies)} edits of a 2,020-object unit: median {median:.2f} s, "
          f"p95 {p95:.2f} s, max {latencies[-1]:.2f} s (targets: median <= 1 s, p95 <= 2 s)")  # fmt: skip
    for n in range(20):
        subprocess.run([*kube, "delete", "namespace", f"{prefix}-{n:02d}", "--wait=false"], capture_output=True)
    InventoryStore(api).save("drift", Inventory())


if __name__ == "__main__":
    main()
