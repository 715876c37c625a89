"""Issue 4's apply numbers on the local control plane, gitopsguard and kubectl in the same run.

    .venv/bin/python bench/apply_2000.py [--kubeconfig PATH] [--objects-per-ns 100]

Needs a running dev cluster (`gitopsguard dev-cluster up`; default kubeconfig: its). Builds 2,020 objects
(20 Namespaces, 1,000 ConfigMaps, 500 Deployments, 500 Services) twice under different names, applies one
copy with `kubectl apply --server-side -f` and the other with one `gitopsguard reconcile` pass from a real
git repository, then times a no-op pass and a pass with one changed object. Removes its namespaces after.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.controlplane import ControlPlane
from gitopsguard.cluster import connect
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import Inventory, InventoryStore
from gitopsguard.devcluster import StateLayout
from gitopsguard.reconcile import Unit, reconcile
from gitopsguard.source import GitSource, SourceSpec
from tests.gitrepo import Upstream
from tests.kubectl import kubectl


def objects(prefix: str, namespaces: int = 20) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for n in range(namespaces):
        ns = f"{prefix}-{n:02d}"
        out.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        for i in range(50):
            out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}", "namespace": ns},
                        "data": {"key": f"value-{i}"}})  # fmt: skip
        for i in range(25):
            labels = {"app": f"app-{i}"}
            meta = {"name": f"app-{i}", "namespace": ns}
            out.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
                        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
                            "metadata": {"labels": labels},
                            "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}}})  # fmt: skip
            out.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"app-{i}", "namespace": ns},
                        "spec": {"selector": labels, "ports": [{"port": 80, "protocol": "TCP"}]}})  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubeconfig", type=Path, default=StateLayout.default().kubeconfig)
    args = parser.parse_args()
    api = connect(args.kubeconfig)
    plane = ControlPlane()
    remove_namespaces(args.kubeconfig, wait=True)  # an interrupted earlier run may have left some
    InventoryStore(api).save("bench", Inventory())  # each run starts from a fresh repository history
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        peer_file = root / "peer.yaml"
        peer_file.write_text(yaml.safe_dump_all(objects("bench-kubectl")))
        command = [kubectl(), "--kubeconfig", str(args.kubeconfig), "apply", "--server-side", "-f", str(peer_file)]
        plane.settle()
        peer, _ = plane.measure(lambda: subprocess.run(command, check=True, capture_output=True))

        upstream = Upstream(root / "git")
        upstream.write("apps/all.yaml", yaml.safe_dump_all(objects("bench-gg")))
        upstream.commit()
        unit = Unit("bench", "apps")
        source = GitSource(SourceSpec(upstream.url), root / "gg")

        def one_pass() -> object:
            result = reconcile(unit, source, Applier(api), InventoryStore(api))
            if result.error:
                raise SystemExit(f"reconcile failed: {result.error}")
            return result

        plane.settle()  # the controller-manager reacts to kubectl's Deployments and Namespaces for a few seconds
        ours, first = plane.measure(one_pass)
        noop, _ = plane.measure(one_pass)
        text = (upstream.work / "apps/all.yaml").read_text().replace("key: value-7\n", "key: changed\n", 1)
        (upstream.work / "apps/all.yaml").write_text(text)
        upstream.commit()
        one, changed = plane.measure(one_pass)
        count = len(first.changes)  # type: ignore[attr-defined]
        written = sum(c.action.value != "unchanged" for c in changed.changes)  # type: ignore[attr-defined]
        print(f"objects: {count}")
        print(f"initial apply: gitopsguard {ours.wall:.1f} s, kubectl apply --server-side {peer.wall:.1f} s, "
              f"ratio {ours.wall / peer.wall:.2f} (target <= 0.5)")  # fmt: skip
        print(f"  gitopsguard: {ours}\n  kubectl:     {peer}")
        print(f"no-op pass (same commit, nothing moved): {noop.wall:.2f} s (target <= 0.5 s)")
        print(f"one changed object: {one.wall:.2f} s, objects written: {written} (target <= 1 s)")
    remove_namespaces(args.kubeconfig, wait=False)
    InventoryStore(api).save("bench", Inventory())  # the namespaces are gone; forget them


def remove_namespaces(kubeconfig: Path, *, wait: bool) -> None:
    names = [f"namespace/{prefix}-{n:02d}" for prefix in ("bench-kubectl", "bench-gg") for n in range(20)]
    subprocess.run([kubectl(), "--kubeconfig", str(kubeconfig), "delete", "--ignore-not-found", f"--wait={str(wait).lower()}",
                    *names], capture_output=True, check=False)  # fmt: skip


if __name__ == "__main__":
    main()
