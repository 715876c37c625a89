"""The client's CPU per watch event: a watch on ConfigMaps in a fresh namespace while `kubectl apply
--server-side` creates ``--objects`` of them (kubectl's CPU is a child's, not counted).

    .venv/bin/python bench/watch_events.py [--kubeconfig PATH] [--objects 1000]

Needs a running dev cluster. Prints this process's CPU from the watch's opening until the last event arrived,
per event; the live cache and the live scan pay it for every change to what they watch. Uses only
`RawApi.watch`, so the same file runs against an older checkout (copy it into that checkout's bench/).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gitopsguard.cluster import connect
from gitopsguard.cluster.rest import RawApi
from gitopsguard.devcluster import StateLayout
from tests.kubectl import kubectl


def cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubeconfig", type=Path, default=StateLayout.default().kubeconfig)
    parser.add_argument("--objects", type=int, default=1000)
    args = parser.parse_args()
    kube = [kubectl(), "--kubeconfig", str(args.kubeconfig)]
    namespace = f"bench-watch-{int(time.time()) % 100_000:05d}"
    subprocess.run([*kube, "create", "namespace", namespace], check=True, capture_output=True)
    try:
        measure(RawApi(connect(args.kubeconfig)), kube, namespace, args.objects)
    finally:
        subprocess.run([*kube, "delete", "namespace", namespace, "--wait=false"], capture_output=True, check=False)


def measure(raw: RawApi, kube: list[str], namespace: str, objects: int) -> None:
    seen, opened, done = [0], threading.Event(), threading.Event()

    def watch() -> None:
        query = {"timeoutSeconds": "300"}
        for _ in raw.watch(f"/api/v1/namespaces/{namespace}/configmaps", query, read_timeout=310, on_open=opened.set):
            seen[0] += 1
            if seen[0] >= objects:
                done.set()
                return

    threading.Thread(target=watch, daemon=True).start()
    if not opened.wait(30):
        raise SystemExit("the watch did not open within 30 s")
    docs = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}", "namespace": namespace},
             "data": {"key": "v" * 300}} for i in range(objects)]  # fmt: skip
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as manifests:
        manifests.write(yaml.safe_dump_all(docs))
        manifests.flush()
        start, wall = cpu(), time.perf_counter()
        subprocess.run([*kube, "apply", "--server-side", "-f", manifests.name], check=True, capture_output=True)
        if not done.wait(300):
            raise SystemExit(f"only {seen[0]} of {objects} events arrived within 300 s")
        used, wall = cpu() - start, time.perf_counter() - wall
    print(f"{seen[0]} watch events in {wall:.1f} s: client CPU {used:.3f} s, {used / seen[0] * 1e6:.0f} us an event")


if __name__ == "__main__":
    main()
