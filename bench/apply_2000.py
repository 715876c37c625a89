"""Issue 4's apply numbers on the local control plane, gitopsguard and kubectl in the same run.

    .venv/bin/python bench/apply_2000.py [--kubeconfig PATH] [--workers 64] [--rounds 3] [--pin]

Needs a running dev cluster (`gitopsguard dev-cluster up`; default kubeconfig: its). Builds 2,020 objects
(20 Namespaces, 1,000 ConfigMaps, 500 Deployments, 500 Services) twice under different names, applies one
copy with `kubectl apply --server-side -f` and the other with one `gitopsguard reconcile` pass from a real
git repository, then times a no-op pass and a pass with one changed object. Removes its namespaces after.
The initial-apply comparison runs ``--rounds`` times (default 3; fresh names, the earlier rounds' objects
removed before the next), and the median ratio is the result: kubectl's time alone moves by a third between
runs on the same machine. About 10 minutes with 3 rounds on the 2-core machine.

``--pin`` runs everything as a controller in a Pod of its own sees it: every thread of etcd, the API server and
the controller-manager on core 0 (``bench/affinity.py``; back on both cores after, even on failure) and this
process and its children (git, kustomize, kubectl) on core 1. Without it all share both cores, so the client's
CPU adds to the API server's wall time.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.affinity import control_plane_pids, pinned
from bench.controlplane import ControlPlane, Usage
from gitopsguard.cluster import connect
from gitopsguard.cluster.apply import WIDTH, Applier
from gitopsguard.cluster.inventory import Inventory, InventoryStore
from gitopsguard.cluster.livecache import LiveCache
from gitopsguard.cluster.rest import RawApi
from gitopsguard.collector import Collector
from gitopsguard.devcluster import StateLayout
from gitopsguard.reconcile import ReconcileResult, Unit, reconcile
from gitopsguard.render.stored import RenderStore
from gitopsguard.source import GitSource, SourceSpec
from tests.gitrepo import Upstream
from tests.kubectl import kubectl

BENCH_LABEL = "gitopsguard.io/bench"  # on the benchmarks' Namespaces, to remove them all afterwards
SERVER_CORE, CLIENT_CORE = 0, 1  # with --pin: the control plane on one core, this process on the other


def objects(prefix: str, namespaces: int = 20) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for n in range(namespaces):
        ns = f"{prefix}-{n:02d}"
        out.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {BENCH_LABEL: "yes"}}})
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
    parser.add_argument("--workers", type=int, default=WIDTH, help="requests in flight per batch")
    parser.add_argument("--rounds", type=int, default=3, help="initial-apply pairs to run (the ratio's median)")
    parser.add_argument("--pin", action="store_true", help="control plane on core 0, this process on core 1")
    args = parser.parse_args()
    if not args.pin:
        measure(args)
        return
    os.sched_setaffinity(0, {CLIENT_CORE})  # before any thread starts: every thread and child inherits it
    with pinned(control_plane_pids(), SERVER_CORE):
        measure(args)


def measure(args: argparse.Namespace) -> None:
    api = connect(args.kubeconfig)
    plane = ControlPlane()
    remove_namespaces(args.kubeconfig, wait=True)  # an interrupted earlier run may have left some
    # Fresh namespace names each run: for 30 s after a namespace is deleted, the API server checks every
    # request in a namespace of that name against etcd (NamespaceLifecycle admission), which made a run
    # soon after the last one's cleanup up to 40% slower.
    run = f"{int(time.time()) % 100_000:05d}"
    InventoryStore(api).save("bench", Inventory())  # each run starts from a fresh repository history
    stop = threading.Event()
    earlier = [initial_pair(args.kubeconfig, plane, f"{run}r{n}", args.workers) for n in range(args.rounds - 1)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        peer = kubectl_apply(args.kubeconfig, plane, root, run)

        upstream = Upstream(root / "git")
        upstream.write("apps/all.yaml", yaml.safe_dump_all(objects(f"bench-gg-{run}")))
        upstream.commit()
        unit = Unit("bench", "apps")
        source = GitSource(SourceSpec(upstream.url), root / "gg")

        applier, store, renders = Applier(api), InventoryStore(api), {}
        stored = RenderStore(root / "gg" / "renders")  # the controller's: on disk, and documents in memory
        live = LiveCache(applier, RawApi(api), unit.name, on_change=lambda: None)

        collector = Collector()

        def one_pass(*, loop: bool) -> ReconcileResult:
            """A pass as `gitopsguard reconcile` runs it, or as the `run` loop does (render and live cache
            kept between passes)."""
            result = reconcile(
                unit,
                source,
                Applier(api, workers=args.workers),
                store,
                stored=stored if loop else RenderStore(stored.directory),  # a new process: the disk only
                **({"renders": renders, "live": live} if loop else {}),
            )
            if result.error:
                raise SystemExit(f"reconcile failed: {result.error}")
            return result

        def timed(*, loop: bool) -> tuple[Usage, ReconcileResult]:
            """Timed with the cycle collector off, and run between passes, untimed: as Controller.run runs
            passes, and as `gitopsguard reconcile` does (off for the whole process, which ends after one)."""
            usage, result = plane.measure(lambda: one_pass(loop=loop))
            collector.between_passes()
            return usage, result  # type: ignore[return-value]

        plane.settle()  # the controller-manager reacts to kubectl's Deployments and Namespaces for a few seconds
        with collector.passes():
            ours, first = timed(loop=True)
            for kind in first.kinds:  # type: ignore[attr-defined]
                live.track(kind, stop)
            while any(live.objects(kind) is None for kind in first.kinds):  # type: ignore[attr-defined]
                time.sleep(0.05)
            time.sleep(2)  # let the controller-manager write the Deployments' status: no drift, but they moved
            noop_once, _ = timed(loop=False)
            noop, _ = timed(loop=True)
            for value in ("changed", "changed-again"):
                text = (upstream.work / "apps/all.yaml").read_text()
                (upstream.work / "apps/all.yaml").write_text(
                    re.sub(r"key: (value-7|changed)\n", f"key: {value}\n", text, count=1)
                )
                upstream.commit()
                once = value == "changed"
                one, changed = timed(loop=not once)
                written = sum(c.action.value != "unchanged" for c in changed.changes)  # type: ignore[attr-defined]
                if once:
                    one_once, written_once = one, written
        stop.set()
        print(f"objects: {len(first.changes)}")  # type: ignore[attr-defined]
        for n, (their, mine) in enumerate([*earlier, (peer, ours)], start=1):
            print(f"initial apply, round {n}: gitopsguard {mine.wall:.1f} s, kubectl apply --server-side "
                  f"{their.wall:.1f} s, ratio {mine.wall / their.wall:.2f} (target <= 0.5)")  # fmt: skip
            print(f"  gitopsguard: {mine}\n  kubectl:     {their}")
        if earlier:
            ratios = [mine.wall / their.wall for their, mine in [*earlier, (peer, ours)]]
            median, verdict = statistics.median(ratios), "met" if statistics.median(ratios) <= 0.5 else "NOT met"
            print(f"initial apply over {len(ratios)} rounds: ratio median {median:.2f} ({verdict}: target <= 0.5), "
                  f"rounds {min(ratios):.2f}-{max(ratios):.2f}")  # fmt: skip
        print(f"no-op pass (same commit, no drift; Deployments' status moved): {noop.wall:.2f} s in the run loop, "
              f"{noop_once.wall:.2f} s as a one-off `reconcile` (target <= 0.5 s); client CPU (the live cache's "
              f"watches included) {noop.cpu['client']:.2f} and {noop_once.cpu['client']:.2f} s")  # fmt: skip
        print(f"one changed object: {one.wall:.2f} s in the run loop ({written} written), {one_once.wall:.2f} s as "
              f"a one-off `reconcile` ({written_once} written) (target <= 1 s)")  # fmt: skip
    remove_namespaces(args.kubeconfig, wait=False)
    InventoryStore(api).save("bench", Inventory())  # the namespaces are gone; forget them


def kubectl_apply(kubeconfig: Path, plane: ControlPlane, root: Path, tag: str) -> Usage:
    """The peer: `kubectl apply --server-side -f` of the 2,020 objects under names of their own, timed
    once the control plane is idle."""
    peer_file = root / "peer.yaml"
    peer_file.write_text(yaml.safe_dump_all(objects(f"bench-kubectl-{tag}")))
    command = [kubectl(), "--kubeconfig", str(kubeconfig), "apply", "--server-side", "-f", str(peer_file)]
    plane.settle()
    return plane.measure(lambda: subprocess.run(command, check=True, capture_output=True))[0]


def initial_pair(kubeconfig: Path, plane: ControlPlane, tag: str, workers: int) -> tuple[Usage, Usage]:
    """One more initial-apply comparison under names of its own: kubectl's usage, then gitopsguard's (a
    pass of the run loop into a fresh unit). Removes its namespaces (and waits) before returning."""
    api = connect(kubeconfig)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        peer = kubectl_apply(kubeconfig, plane, root, tag)
        upstream = Upstream(root / "git")
        upstream.write("apps/all.yaml", yaml.safe_dump_all(objects(f"bench-gg-{tag}")))
        upstream.commit()
        unit, store = Unit(f"bench-{tag}", "apps"), InventoryStore(api)
        source = GitSource(SourceSpec(upstream.url), root / "gg")
        plane.settle()
        with Collector().passes():
            stored = RenderStore(root / "gg" / "renders")
            ours, result = plane.measure(
                lambda: reconcile(unit, source, Applier(api, workers=workers), store, stored=stored)
            )
        if result.error:  # type: ignore[attr-defined]
            raise SystemExit(f"reconcile failed: {result.error}")  # type: ignore[attr-defined]
        remove_namespaces(kubeconfig, wait=True)
        forget = ["delete", "configmap", "-n", store.namespace, f"gitopsguard-inventory-{unit.name}"]
        subprocess.run([kubectl(), "--kubeconfig", str(kubeconfig), *forget], capture_output=True, check=False)
    return peer, ours


def remove_namespaces(kubeconfig: Path, *, wait: bool) -> None:
    """Delete every Namespace a benchmark made (and so all in them)."""
    command = [kubectl(), "--kubeconfig", str(kubeconfig), "delete", "namespace", "-l", BENCH_LABEL,
               "--ignore-not-found", f"--wait={str(wait).lower()}"]  # fmt: skip
    subprocess.run(command, capture_output=True, check=False)


if __name__ == "__main__":
    main()
