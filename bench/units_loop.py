"""Issue 19: the Units loop (``run --root``, ``fleet.py``) on the dev cluster: N Units of 4 ConfigMaps each,
from one repository, in one namespace (the shape of Flux's 1,000-Kustomization benchmark, smaller by default:
the dev cluster is shared).

    GITOPSGUARD_TEST_KUBECONFIG=~/.local/state/gitopsguard/dev-cluster/kubeconfig \\
        PYTHONPATH=$PWD .venv/bin/python bench/units_loop.py [--units 100]

Prints: seconds from the loop's start until every Unit is Ready; the process's peak RSS; then one no-op
round forced by a fetch (nothing changed in Git or the cluster): its CPU-seconds and how many objects it
wrote (Units and ConfigMaps whose resourceVersion moved). The namespace is deleted afterwards.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import threading
import time
import uuid
from pathlib import Path

from kubernetes import client

from gitopsguard.cluster import connect
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.cluster.units import UnitStore
from gitopsguard.fleet import Fleet
from gitopsguard.reconcile import Unit
from gitopsguard.source import GitSource, SourceSpec
from tests.gitrepo import Upstream
from tests.integration.test_units_crd import install_unit_crd

UNIT = "apiVersion: gitopsguard.io/v1alpha1\nkind: Unit\nmetadata: {{name: u{i:04}, namespace: {ns}}}\nspec: {{path: " \
       "units/u{i:04}, interval: 1h}}\n---\n"  # fmt: skip
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: u{i:04}-{j}, namespace: {ns}}}\ndata: {{v: '1'}}\n---\n"


def write(upstream: Upstream, units: int, namespace: str) -> None:
    upstream.write("root/units.yaml", "".join(UNIT.format(i=i, ns=namespace) for i in range(units)))
    for i in range(units):
        upstream.write(f"units/u{i:04}/cms.yaml", "".join(CONFIGMAP.format(i=i, j=j, ns=namespace) for j in range(4)))
    upstream.commit()


def versions(api: client.ApiClient, namespace: str) -> dict[str, str]:
    raw = RawApi(api)
    seen = {f"Unit/{u.name}": u.resource_version for u in UnitStore(raw).list(namespace)}
    for cm in client.CoreV1Api(api).list_namespaced_config_map(namespace).items:
        seen[f"ConfigMap/{cm.metadata.name}"] = cm.metadata.resource_version
    return seen


def all_ready(units: UnitStore, namespace: str, count: int) -> bool:
    listed = units.list(namespace)
    ready = [u for u in listed if any(c.get("type") == "Ready" and c.get("status") == "True"
                                      for c in u.status.get("conditions") or ())]  # fmt: skip
    return len(ready) == count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--units", type=int, default=100)
    args = parser.parse_args()
    api = connect(Path(os.environ["GITOPSGUARD_TEST_KUBECONFIG"]), None)
    raw, namespace = RawApi(api), f"bench-{uuid.uuid4().hex[:8]}"
    install_unit_crd(raw)
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    stop = threading.Event()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            upstream = Upstream(Path(tmp) / "git")
            write(upstream, args.units, namespace)
            rounds: list[float] = []
            fleet = Fleet(Unit(f"{namespace}-root", "root", namespace, policies_path=None),
                          GitSource(SourceSpec(upstream.url), Path(tmp) / "gg"), Applier(api), InventoryStore(api),
                          raw, interval=3600)  # fmt: skip
            units = UnitStore(raw)
            started = time.monotonic()
            threading.Thread(target=fleet.run, args=(stop,), daemon=True).start()
            while not all_ready(units, namespace, args.units):
                time.sleep(0.5)
            took = time.monotonic() - started
            print(f"{args.units} Units of 4 ConfigMaps: all Ready {took:.1f} s after start")
            print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (this process)")
            quiet = fleet.rounds  # the events of our own writes end in quiet passes: wait for 5 s without a round
            while True:
                time.sleep(5)
                if fleet.rounds == quiet:
                    break
                quiet = fleet.rounds
            print(f"settled {time.monotonic() - started:.1f} s after start (no round for 5 s)")
            before, cpu = versions(api, namespace), time.process_time()
            duration = fleet.last_duration
            fleet.wake()  # fetch: the same commit, nothing moved
            deadline = time.monotonic() + 60
            while fleet.last_duration == duration and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(1)
            cpu, after = time.process_time() - cpu, versions(api, namespace)
            moved = sorted(k for k in after if before.get(k) != after[k])
            rounds.append(fleet.last_duration)
            print(
                f"no-op round: {fleet.last_duration:.2f} s wall, {cpu:.2f} CPU-s (process, round and watches), "
                f"{len(moved)} objects written {moved[:5]}"
            )
    finally:
        stop.set()
        client.CoreV1Api(api).delete_namespace(namespace)


if __name__ == "__main__":
    main()
