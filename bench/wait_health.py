"""Issue 19: what a Unit's ``wait`` costs: health_of alone (pure), and one round of wait_healthy on the dev cluster.

    PYTHONPATH=$PWD .venv/bin/python bench/wait_health.py [--objects 4000] [--rounds 5]
                                                          [--cluster-objects 200] [--kubeconfig PATH]

Pure: --objects live bodies (a quarter each of rolled-out Deployments, StatefulSets, ConfigMaps and custom
resources judged by one CEL check, the shape of 1,000 Units of 4 objects) judged by health_of, median of
--rounds. Cluster (skipped with --cluster-objects 0): that many ConfigMaps created in a namespace of its own
(deleted after), then --rounds times a wait_healthy over them, all Current in its first round (the cost of
reading each object once, what every round costs per object not yet Current), alternately with one read in
flight and with wait.READERS, so that both see the same load; medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gitopsguard.cluster import connect
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.rest import Request
from gitopsguard.devcluster import StateLayout
from gitopsguard.model import ObjectKey
from gitopsguard.plan.health import HealthCheck, health_of
from gitopsguard.policy.cel import compile_expression
from gitopsguard.sync import wait

READY = "self.status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')"


def bodies(count: int) -> list[dict[str, Any]]:
    conditions = [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                  {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]  # fmt: skip
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "generation": 3},
                  "spec": {"replicas": 2, "progressDeadlineSeconds": 600},
                  "status": {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2,
                             "availableReplicas": 2, "conditions": conditions}}  # fmt: skip
    stateful = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "generation": 1},
                "spec": {"replicas": 1}, "status": {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1,
                                                    "currentReplicas": 1, "currentRevision": "a",
                                                    "updateRevision": "a"}}  # fmt: skip
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v" * 100}}
    custom = {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g", "generation": 1},
              "status": {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True"}]}}  # fmt: skip
    kinds = [deployment, stateful, config, custom]
    return [kinds[i % 4] for i in range(count)]


def pure(count: int, rounds: int) -> None:
    checks = [HealthCheck("example.com/v1", "Gadget", "bench", compile_expression(READY, over_self=True))]
    objects, times = bodies(count), []
    for _ in range(rounds):
        started = time.perf_counter()
        states = [health_of(body, checks).current for body in objects]
        times.append(time.perf_counter() - started)
        if not all(states):
            raise SystemExit("an object of the bench is not Current: the bench no longer measures what it says")
    median = statistics.median(times)
    print(f"health_of over {count} objects: median {median * 1000:.1f} ms ({median / count * 1e6:.1f} us each)")


def on_cluster(kubeconfig: Path, count: int, rounds: int) -> None:
    api = connect(kubeconfig)
    applier = Applier(api)
    namespace = f"bench-wait-{uuid.uuid4().hex[:8]}"
    applier.raw.call("POST", "/api/v1/namespaces", body={"metadata": {"name": namespace}})
    try:
        path = f"/api/v1/namespaces/{namespace}/configmaps"
        made = [Request("POST", path, {}, f'{{"metadata": {{"name": "c{i}"}}}}'.encode()) for i in range(count)]
        if any(answer.status != 201 for answer in applier.raw.send_all(made, 64)):
            raise SystemExit(f"namespace {namespace}: the ConfigMaps could not all be created")
        targets = [(ObjectKey("", "ConfigMap", namespace, f"c{i}"), "v1") for i in range(count)]
        times: dict[int, list[float]] = {1: [], wait.READERS: []}
        for _ in range(rounds):  # one after another, then side by side, alternately: the same load for both
            for readers in times:
                times[readers].append(_one_wait(applier, targets, readers))
        for readers, took in times.items():
            median = statistics.median(took)
            print(f"wait_healthy over {count} ConfigMaps, all Current in one round, {readers} reads in flight: "
                  f"median {median:.2f} s ({median / count * 1000:.2f} ms each)")  # fmt: skip
    finally:
        applier.raw.request("DELETE", f"/api/v1/namespaces/{namespace}")


def _one_wait(applier: Applier, targets: list[tuple[ObjectKey, str]], readers: int) -> float:
    kept, wait.READERS = wait.READERS, readers
    try:
        started = time.perf_counter()
        waited = wait.wait_healthy(applier, targets, (), time.monotonic() + 60)
        took = time.perf_counter() - started
    finally:
        wait.READERS = kept
    if not waited.healthy:
        raise SystemExit(waited.message)
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cluster-objects", type=int, default=200)
    parser.add_argument("--kubeconfig", type=Path, default=StateLayout.default().kubeconfig)
    args = parser.parse_args()
    pure(args.objects, args.rounds)
    if args.cluster_objects:
        on_cluster(args.kubeconfig, args.cluster_objects, args.rounds)


if __name__ == "__main__":
    main()
