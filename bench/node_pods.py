"""The dev cluster's node: a warm `up` until the Node is Ready, and Pod create-to-Ready times.

Run as root from the repository root, with no other dev cluster holding the machine's node:

    .venv/bin/python bench/node_pods.py [--pods 10]

It brings up a throw-away cluster with a node (binaries from the normal cache), times `up` (the control
plane, containerd, kube-proxy and the kubelet until the Node is Ready), creates ``--pods`` Pods of the
pause image one after another and times each from create to Ready, then takes the cluster down and times
that too. Prints one line per number.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from kubernetes import client

from gitopsguard.cluster import connect
from gitopsguard.devcluster import CacheLayout, DevCluster, StateLayout
from gitopsguard.devcluster.node_config import PAUSE_IMAGE
from gitopsguard.devcluster.progress import SilentProgress


def pod_to_ready(core: client.CoreV1Api, name: str) -> float:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
        "containers": [{"name": "pause", "image": PAUSE_IMAGE, "imagePullPolicy": "Never"}],
        "terminationGracePeriodSeconds": 0, "automountServiceAccountToken": False}}  # fmt: skip
    start = time.monotonic()
    core.create_namespaced_pod("default", body)
    while True:
        conditions = core.read_namespaced_pod_status(name, "default").status.conditions or []
        if any(c.type == "Ready" and c.status == "True" for c in conditions):
            return time.monotonic() - start
        if time.monotonic() - start > 120:
            raise SystemExit(f"Pod {name} not Ready after 120 s")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=10)
    pods = parser.parse_args().pods
    with tempfile.TemporaryDirectory(prefix="node-bench-") as scratch:
        cluster = DevCluster(StateLayout(Path(scratch) / "state"), CacheLayout.default(), SilentProgress())
        start = time.monotonic()
        try:
            cluster.up(node=True)
            print(f"warm dev-cluster up with a node, until the Node is Ready: {time.monotonic() - start:.1f} s")
            core = client.CoreV1Api(connect(cluster.state.kubeconfig))
            times = [pod_to_ready(core, f"bench-{index}") for index in range(pods)]
            print(f"Pod create to Ready, {pods} Pods one after another: median {statistics.median(times):.2f} s, "
                  f"min {min(times):.2f} s, max {max(times):.2f} s")  # fmt: skip
        finally:
            start = time.monotonic()
            cluster.down()
            print(f"dev-cluster down (node included): {time.monotonic() - start:.1f} s")


if __name__ == "__main__":
    main()
