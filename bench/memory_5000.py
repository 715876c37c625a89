"""Peak memory of gitopsguard managing 5,000 objects (issue 4: at most 300 MB).

    .venv/bin/python bench/memory_5000.py [--kubeconfig PATH]

Needs a running dev cluster. Commits 5,020 objects (20 Namespaces, 5,000 ConfigMaps) to a git repository,
then measures the peak RSS of two separate processes: `gitopsguard reconcile` doing the initial apply, and
`gitopsguard run` holding the unit for 20 s with one drift repair in between. Removes its namespaces after.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gitopsguard.cluster import connect
from gitopsguard.cluster.inventory import Inventory, InventoryStore
from gitopsguard.devcluster import StateLayout
from tests.gitrepo import Upstream
from tests.kubectl import kubectl


def objects() -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for n in range(20):
        ns = f"mem-{n:02d}"
        out.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        out += [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}", "namespace": ns},
                 "data": {"key": f"value-{i}", "settings": "x" * 200}} for i in range(250)]  # fmt: skip
    return out


def peak_rss_mb(command: list[str], *, seconds: float | None = None, during: object = None) -> float:
    """Peak RSS of ``command`` (a fresh child), optionally stopped with SIGTERM after ``seconds``."""
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if seconds is not None:
        time.sleep(seconds / 2)
        if during:
            during()  # type: ignore[operator]
        time.sleep(seconds / 2)
        child.terminate()
    _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage, not the maximum over all children
    if seconds is None and os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed")
    return usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubeconfig", type=Path, default=StateLayout.default().kubeconfig)
    args = parser.parse_args()
    kube = [kubectl(), "--kubeconfig", str(args.kubeconfig)]
    store = InventoryStore(connect(args.kubeconfig))
    store.save("memory", Inventory())  # each run starts from a fresh repository history
    try:
        measure(args.kubeconfig, kube)
    finally:
        for n in range(20):
            subprocess.run([*kube, "delete", "namespace", f"mem-{n:02d}", "--wait=false"], capture_output=True)
        store.save("memory", Inventory())


def measure(kubeconfig: Path, kube: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        upstream = Upstream(Path(tmp) / "git")
        upstream.write("apps/all.yaml", yaml.safe_dump_all(objects()))
        upstream.commit()
        common = ["--repo", str(upstream.bare), "--path", "apps", "--unit", "memory",
                  "--kubeconfig", str(kubeconfig), "--workdir", str(Path(tmp) / "gg"),
                  "--audit-log", str(Path(tmp) / "audit.jsonl")]  # fmt: skip
        gg = [sys.executable, "-m", "gitopsguard"]
        first = peak_rss_mb([*gg, "reconcile", *common])
        edit = ["patch", "configmap", "cm-7", "-n", "mem-03", "--type", "merge", "-p", '{"data":{"key":"edited"}}']
        loop = peak_rss_mb([*gg, "run", *common], seconds=20, during=lambda: subprocess.run([*kube, *edit], check=True))
        print(f"peak RSS managing 5,020 objects: initial apply {first:.0f} MB, continuous loop {loop:.0f} MB "
              "(target <= 300 MB)")  # fmt: skip


if __name__ == "__main__":
    main()
