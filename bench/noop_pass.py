"""The one-off no-op pass over 2,020 objects, alone, several times: in process (as `apply_2000.py` times it) and
as the `gitopsguard reconcile` command (a new process: imports, kubeconfig, connections, exit).

    .venv/bin/python bench/noop_pass.py [--kubeconfig PATH] [--passes 7] [--profile FILE]

Needs a running dev cluster. Applies `apply_2000.py`'s 2,020 objects once (fresh names), waits until the
control plane is idle, then times ``--passes`` no-op passes each way, alternating, and prints each and the
medians: wall time, the client's CPU, the API server's CPU and (for the command) its peak RSS. Passes in
process run as `apply_2000.py`'s one-off pass does (no kept render, no live cache, a new Applier, the render
from disk) with the cycle collector off. ``--profile FILE`` also writes a cProfile of one more pass in process
(read it with ``python -m pstats FILE``). Removes its namespaces after. It uses only `reconcile(...)`, `Applier`,
`InventoryStore`, `RenderStore` and the command line, so the same file runs against an older checkout (copy it
into that checkout's bench/ and run it there) for a before/after comparison.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.apply_2000 import objects, remove_namespaces
from bench.controlplane import ControlPlane, Usage
from gitopsguard.cluster import connect
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import Inventory, InventoryStore
from gitopsguard.collector import Collector
from gitopsguard.devcluster import StateLayout
from gitopsguard.reconcile import ReconcileResult, Unit, reconcile
from gitopsguard.render.stored import RenderStore
from gitopsguard.source import GitSource, SourceSpec
from tests.gitrepo import Upstream

UNIT = "bench-noop"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubeconfig", type=Path, default=StateLayout.default().kubeconfig)
    parser.add_argument("--passes", type=int, default=7, help="no-op passes each way (the medians)")
    parser.add_argument("--profile", type=Path, default=None, help="write a cProfile of one pass in process here")
    args = parser.parse_args()
    api, plane = connect(args.kubeconfig), ControlPlane()
    remove_namespaces(args.kubeconfig, wait=True)  # an interrupted earlier run may have left some
    InventoryStore(api).save(UNIT, Inventory())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        upstream = Upstream(root / "git")
        upstream.write("apps/all.yaml", yaml.safe_dump_all(objects(f"bench-noop-{int(time.time()) % 100_000:05d}")))
        upstream.commit()
        source, workdir = GitSource(SourceSpec(upstream.url), root / "gg"), root / "gg"
        unit, store, stored = Unit(UNIT, "apps"), InventoryStore(api), RenderStore(root / "gg" / "renders")

        def one_off() -> ReconcileResult:
            result = reconcile(unit, source, Applier(api), store, stored=RenderStore(stored.directory))
            if result.error:
                raise SystemExit(f"reconcile failed: {result.error}")
            return result

        first = plane.measure(one_off)[0]
        print(f"initial apply (untimed for the result): {first}")
        plane.settle()
        time.sleep(2)  # the controller-manager writes the Deployments' status: they move, without drift
        plane.settle()
        command = [sys.executable, "-m", "gitopsguard", "reconcile", "--repo", upstream.url, "--path", "apps",
                   "--unit", UNIT, "--kubeconfig", str(args.kubeconfig), "--workdir", str(workdir),
                   "--audit-log", str(root / "audit.jsonl")]  # fmt: skip
        inside: list[Usage] = []
        outside: list[tuple[Usage, float]] = []
        with Collector().passes():
            for _ in range(args.passes):
                inside.append(plane.measure(one_off)[0])
                outside.append(command_pass(plane, command))
            if args.profile:
                profiler = cProfile.Profile()
                profiler.runcall(one_off)
                profiler.dump_stats(str(args.profile))
        report(inside, outside)
    remove_namespaces(args.kubeconfig, wait=False)
    InventoryStore(api).save(UNIT, Inventory())


def command_pass(plane: ControlPlane, command: list[str]) -> tuple[Usage, float]:
    """One `gitopsguard reconcile` process: its wall time and CPU (``client``), and its peak RSS in MB."""
    peak: list[float] = []

    def run() -> None:
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{' '.join(command)} failed: {child.stderr.read().decode() if child.stderr else ''}")
        peak.append(usage.ru_maxrss / 1024)

    usage = plane.measure(run)[0]
    return usage, peak[0]


def report(inside: list[Usage], outside: list[tuple[Usage, float]]) -> None:
    for n, (mine, (cmd, rss)) in enumerate(zip(inside, outside, strict=True), start=1):
        print(f"pass {n}: in process {mine}; command {cmd}, peak RSS {rss:.0f} MB")

    def median(values: list[float]) -> str:
        return f"{statistics.median(values):.3f}"

    print(f"no-op pass in process, median of {len(inside)}: wall {median([u.wall for u in inside])} s, client CPU "
          f"{median([u.cpu['client'] for u in inside])} s, API server CPU "
          f"{median([u.cpu['kube-apiserver'] for u in inside])} s")  # fmt: skip
    print(f"`gitopsguard reconcile` no-op, median of {len(outside)}: wall {median([u.wall for u, _ in outside])} s, "
          f"process CPU {median([u.cpu['client'] for u, _ in outside])} s, API server CPU "
          f"{median([u.cpu['kube-apiserver'] for u, _ in outside])} s, peak RSS "
          f"{median([rss for _, rss in outside])} MB")  # fmt: skip


if __name__ == "__main__":
    main()
