"""Issue 18: the hand-written HTTP/1.1 stack against well-kept libraries, on the 2,020-object initial apply,
with the control plane on one core and the client on the other.

    .venv-bench/bin/python bench/http_stack.py [--stacks today,httpx-h2,aiohttp] [--rounds 3] [--workers 64]

(a venv with `httpx[http2]` and `aiohttp` beside the project's packages; see bench/README.md.) Each round runs
one `gitopsguard reconcile` pass of apply_2000's 2,020 objects per stack, under namespace names of its own,
as apply_2000's earlier rounds do; the stacks take turns in a rotated order so a drift of the shared machine
does not fall on one of them. The stack is swapped at the seam RawApi builds its transport at
(`rest.transport_for`), so everything else on the path is the same code. For the timed pass only, every thread
of etcd, the API server and the controller-manager is pinned to core 0 (`taskset -a -cp 0 PID`), and put back
on 0,1 after it, even on failure; this process and its children (git) run on core 1 throughout. Prints the
wall time, the client's CPU and the control plane's per pass, the load average before each, and the medians.
If the process is killed hard mid-pass, `bench/affinity.py --restore` puts the control plane back.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.affinity import control_plane_pids, pinned
from bench.apply_2000 import objects, remove_namespaces
from bench.controlplane import ControlPlane, Usage
from bench.httpstacks import STACKS
from gitopsguard.cluster import connect, rest
from gitopsguard.cluster.apply import WIDTH, Applier
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.collector import Collector
from gitopsguard.devcluster import StateLayout
from gitopsguard.model import Action
from gitopsguard.reconcile import ReconcileResult, Unit, reconcile
from gitopsguard.render.stored import RenderStore
from gitopsguard.source import GitSource, SourceSpec
from tests.gitrepo import Upstream
from tests.kubectl import kubectl

SERVER_CORE, CLIENT_CORE = 0, 1
WITHIN = 0.10  # issue 18: a library within 10% of today's wall time replaces the stack


@dataclass(frozen=True)
class Sample:
    stack: str
    usage: Usage
    load: float  # 1-minute load average just before the pass
    requests: int  # sent over the library's transport (0 for today's, not counted)
    versions: str


@contextmanager
def stack_in_use(name: str) -> Iterator[list[Any]]:
    """RawApi objects made in the block use the stack ``name``; yields the transports made, closed after."""
    make = STACKS[name]
    made: list[Any] = []
    original = rest.transport_for
    if make is not None:

        def transport_for(api: Any, timeout: float) -> Any:
            made.append(make(api, timeout))
            return made[-1]

        rest.transport_for = transport_for  # type: ignore[assignment]
    try:
        yield made
    finally:
        rest.transport_for = original  # type: ignore[assignment]
        for transport in made:
            transport.close()


def initial_apply(kubeconfig: Path, plane: ControlPlane, name: str, tag: str, workers: int, pin: bool) -> Sample:
    """One reconcile pass applying the 2,020 objects into a fresh unit over the stack ``name``, timed with the
    control plane pinned; removes its namespaces (and waits) before returning."""
    api = connect(kubeconfig)
    with tempfile.TemporaryDirectory() as tmp, stack_in_use(name) as made:
        root = Path(tmp)
        upstream = Upstream(root / "git")
        upstream.write("apps/all.yaml", yaml.safe_dump_all(objects(f"bench-hs-{tag}")))
        upstream.commit()
        unit, store = Unit(f"bench-hs-{tag}", "apps"), InventoryStore(api)
        source, stored = GitSource(SourceSpec(upstream.url), root / "gg"), RenderStore(root / "gg" / "renders")
        plane.settle()
        load = os.getloadavg()[0]
        try:
            with Collector().passes(), pinned(control_plane_pids(), SERVER_CORE) if pin else _nothing():
                usage, result = plane.measure(
                    lambda: reconcile(unit, source, Applier(api, workers=workers), store, stored=stored)
                )
            _check(name, result)  # type: ignore[arg-type]
            requests = sum(t.requests for t in made)
            versions = ",".join(sorted({v for t in made for v in t.versions})) or "HTTP/1.1 (own)"
        finally:
            remove_namespaces(kubeconfig, wait=True)
            forget = ["delete", "configmap", "-n", store.namespace, f"gitopsguard-inventory-{unit.name}"]
            subprocess.run([kubectl(), "--kubeconfig", str(kubeconfig), *forget], capture_output=True, check=False)
    if STACKS[name] is not None and requests < 4000:  # 2,020 dry runs and 2,020 applies at least
        raise SystemExit(f"{name}: only {requests} requests went over it: the pass did not use the stack")
    return Sample(name, usage, load, requests, versions)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _check(name: str, result: ReconcileResult) -> None:
    """The pass did the whole job: a faster stack that dropped writes would be no result."""
    if result.error:
        raise SystemExit(f"{name}: reconcile failed: {result.error}")
    created = sum(c.action == Action.CREATED for c in result.changes)
    if len(result.changes) != 2020 or created != 2020:
        raise SystemExit(f"{name}: {len(result.changes)} changes, {created} created (expected 2020 and 2020)")


def report(samples: list[Sample], stacks: list[str]) -> None:
    print("\nmedians (wall s, client CPU-s, API server + etcd + controller-manager CPU-s):")
    medians: dict[str, float] = {}
    for name in stacks:
        mine = [s for s in samples if s.stack == name]
        if not mine:
            continue
        medians[name] = statistics.median(s.usage.wall for s in mine)
        client = statistics.median(s.usage.cpu["client"] for s in mine)
        server = statistics.median(sum(v for k, v in s.usage.cpu.items() if k != "client") for s in mine)
        walls = ", ".join(f"{s.usage.wall:.2f}" for s in mine)
        print(f"  {name:9} wall {medians[name]:.2f} s ({walls}), client {client:.2f}, control plane {server:.2f}")
    base = medians.get("today")
    for name, wall in medians.items():
        if base and name != "today":
            verdict = "within 10%: use the library" if wall <= base * (1 + WITHIN) else "not within 10%"
            print(f"  {name}: {wall / base:.2f}x today's wall time ({verdict})")


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that put the control plane back


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", type=Path, default=StateLayout.default().kubeconfig)
    parser.add_argument("--stacks", default="today,httpx-h2,aiohttp", help=f"comma-separated, of {', '.join(STACKS)}")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=WIDTH, help="requests in flight per batch")
    parser.add_argument("--no-pin", action="store_true", help="leave the control plane on both cores")
    args = parser.parse_args()
    stacks = [s for s in args.stacks.split(",") if s]
    unknown = [s for s in stacks if s not in STACKS]
    if unknown:
        raise SystemExit(f"--stacks: unknown {', '.join(unknown)} (known: {', '.join(STACKS)})")
    signal.signal(signal.SIGTERM, _stop)
    os.sched_setaffinity(0, {CLIENT_CORE})  # before any thread: they and git inherit it
    plane, run = ControlPlane(), f"{int(time.time()) % 100_000:05d}"
    remove_namespaces(args.kubeconfig, wait=True)  # an interrupted earlier run may have left some
    samples: list[Sample] = []
    for n in range(args.rounds):
        for name in stacks[n % len(stacks) :] + stacks[: n % len(stacks)]:
            sample = initial_apply(
                args.kubeconfig, plane, name, f"{run}r{n}s{list(STACKS).index(name)}", args.workers, not args.no_pin
            )
            samples.append(sample)
            print(f"round {n + 1} {name:9} {sample.usage} load {sample.load:.2f} [{sample.versions}"
                  f"{f', {sample.requests} requests' if sample.requests else ''}]", flush=True)  # fmt: skip
    report(samples, stacks)


if __name__ == "__main__":
    main()
