"""How long the inventory of a 2,020-object unit takes to save and to load, on the dev cluster.

    .venv/bin/python bench/inventory_io.py [--kubeconfig PATH] [--entries 2020] [--rounds 8]

Every reconcile pass loads its unit's inventory once, and every pass that changes something saves it once.
Prints the median of each; removes its ConfigMap after.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubernetes import client

from gitopsguard.cluster import connect
from gitopsguard.cluster.inventory import Entry, Inventory, InventoryStore
from gitopsguard.devcluster import StateLayout
from gitopsguard.model import ObjectKey

UNIT = "bench-inventory-io"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubeconfig", type=Path, default=StateLayout.default().kubeconfig)
    parser.add_argument("--entries", type=int, default=2020)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    api = connect(args.kubeconfig)
    entries = {
        ObjectKey("", "ConfigMap", f"team-{i % 20:02d}", f"cm-{i}"):
            Entry("v1", str(100000 + i), hashlib.sha256(str(i).encode()).hexdigest()[:16])
        for i in range(args.entries)
    }  # fmt: skip
    inventory = Inventory(entries, "a" * 40, "a" * 40, "", "ConfigMap/team-00/cm-7 configured")
    store, saves, loads = InventoryStore(api), [], []
    try:
        for _ in range(args.rounds):
            started = time.perf_counter()
            store.save(UNIT, inventory)
            saves.append(time.perf_counter() - started)
            started = time.perf_counter()
            loaded = store.load(UNIT)
            loads.append(time.perf_counter() - started)
            if loaded.entries != entries:
                raise SystemExit("the inventory read back is not the one saved")
    finally:
        client.CoreV1Api(api).delete_namespaced_config_map(f"gitopsguard-inventory-{UNIT}", store.namespace)
    print(f"inventory of {args.entries} entries over {args.rounds} rounds: save median "
          f"{statistics.median(saves):.3f} s, load median {statistics.median(loads):.3f} s")  # fmt: skip


if __name__ == "__main__":
    main()
