"""Issue 18: the hand-written HTTP/1.1 stack against well-kept libraries, on the 2,020-object initial apply,
with the control plane on one core and the client on the other.

    .venv-bench/bin/python bench/http_stack.py [--stacks today,httpx-h2,aiohttp] [--rounds 3] [--workers 64]

(a venv with `httpx[http2]` and `aiohttp` beside the project's packages; see bench/README.md.) Each round runs
one `gitopsguard reconcile` pass of apply_2000's 2,020 objects per stack, under namespace names of its own,
as apply_2000's earlier rounds do; the stacks take turns in a rotated order so a drift of the shared machine
does not fall on one of them. The stack is swapped at the seam RawApi builds its transport at
(`rest.transport_for`), so everything else on the path is the same code. For the timed pass only, every thread
of etcd, the API server and the controller-manager is pinned to core 0 (`taskset -a -cp 0 PID`), and put back
on 0,1 after it, even on failure; this process and its children (git) run on core 1 throughout (`--no-pin`:
all on both cores, as apply_2000 measures). Prints the wall time, the client's CPU and the control plane's per
pass, the load average before each, the time spent in requests and the slowest batches, and the medians.
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
from gitopsguard.cluster.rest import JSON, WRITE_ACCEPT
from gitopsguard.collector import Collector
from gitopsguard.devcluster import StateLayout
from gitopsguard.model import Action
from gitopsguard.reconcile import ReconcileResult, Unit, reconcile
from gitopsguard.render.stored import RenderStore
from gitopsguard.source import GitSource, SourceSpec
from tests.gitrepo import Upstream
from tests.kubectl import kubectl

SERVER_CORE, CLIENT_CORE = 0, 1
JSON_ONLY = "+json"
WITHIN = 0.10  # issue 18: a library within 10% of today's wall time replaces the stack


@dataclass(frozen=True)
class Sample:
    stack: str
    usage: Usage
    load: float  # 1-minute load average just before the pass
    requests: int  # sent through the seam
    http: float  # wall seconds the pass spent waiting on the transport (requests and batches)
    slowest: tuple[tuple[float, int], ...]  # the 3 slowest batches: (seconds, requests)
    versions: str


class Timed:
    """A transport, with the wall time spent in it and the requests sent counted (the rest of the pass is
    fetching, rendering, discovery and the plan: the same code whatever the stack)."""

    def __init__(self, inner: Any, *, json_only: bool) -> None:
        self.inner, self.seconds, self.requests = inner, 0.0, 0
        self.batches: list[tuple[float, int]] = []  # (seconds, requests) of each send_all
        self._json_only = json_only

    def _accept(self, headers: dict[str, str]) -> dict[str, str]:
        """Without protobuf.py: JSON answers where RawApi asks for protobuf (JSON stays the fallback either way)."""
        if self._json_only and headers.get("Accept") == WRITE_ACCEPT:
            return headers | {"Accept": JSON}
        return headers

    def send(self, method: str, target: str, body: bytes | None, headers: dict[str, str]) -> Any:
        start = time.perf_counter()
        try:
            return self.inner.send(method, target, body, self._accept(headers))
        finally:
            self.seconds, self.requests = self.seconds + time.perf_counter() - start, self.requests + 1

    def send_all(self, calls: Any, width: int) -> Any:
        start = time.perf_counter()
        try:
            if self._json_only:
                calls = [(method, target, body, self._accept(headers)) for method, target, body, headers in calls]
            return self.inner.send_all(calls, width)
        finally:
            took = time.perf_counter() - start
            self.seconds, self.requests = self.seconds + took, self.requests + len(calls)
            self.batches.append((took, len(calls)))

    @property
    def versions(self) -> set[str]:
        return set(getattr(self.inner, "versions", {"HTTP/1.1 (own)"}))

    def close(self) -> None:
        if hasattr(self.inner, "close"):
            self.inner.close()


@contextmanager
def stack_in_use(name: str) -> Iterator[list[Timed]]:
    """RawApi objects made in the block use the stack ``name`` (a name ending in ``+json``: the writes'
    answers in JSON, as without protobuf.py); yields the transports made, closed after."""
    make, original = STACKS[name.removesuffix(JSON_ONLY)], rest.transport_for  # type: ignore[attr-defined]
    made: list[Timed] = []

    def transport_for(api: Any, timeout: float) -> Any:
        inner = make(api, timeout) if make is not None else original(api, timeout)
        made.append(Timed(inner, json_only=name.endswith(JSON_ONLY)))
        return made[-1]

    rest.transport_for = transport_for  # type: ignore[attr-defined]  # the seam: RawApi reads it here
    try:
        yield made
    finally:
        rest.transport_for = original  # type: ignore[attr-defined]
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
            http = sum(t.seconds for t in made)
            slowest = tuple(sorted((b for t in made for b in t.batches), reverse=True)[:3])
            versions = ",".join(sorted({v for t in made for v in t.versions}))
        finally:
            remove_namespaces(kubeconfig, wait=True)
            forget = ["delete", "configmap", "-n", store.namespace, f"gitopsguard-inventory-{unit.name}"]
            subprocess.run([kubectl(), "--kubeconfig", str(kubeconfig), *forget], capture_output=True, check=False)
    if requests < 4000:  # 2,020 dry runs and 2,020 applies at least
        raise SystemExit(f"{name}: only {requests} requests went over it: the pass did not use the stack")
    return Sample(name, usage, load, requests, http, slowest, versions)


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
    print("\nmedians (wall s, of it in requests, client CPU-s, API server + etcd + controller-manager CPU-s):")
    medians: dict[str, float] = {}
    for name in stacks:
        mine = [s for s in samples if s.stack == name]
        if not mine:
            continue
        medians[name] = statistics.median(s.usage.wall for s in mine)
        client = statistics.median(s.usage.cpu["client"] for s in mine)
        server = statistics.median(sum(v for k, v in s.usage.cpu.items() if k != "client") for s in mine)
        http = statistics.median(s.http for s in mine)
        walls = ", ".join(f"{s.usage.wall:.2f}" for s in mine)
        print(f"  {name:9} wall {medians[name]:.2f} s ({walls}), in requests {http:.2f} s, client {client:.2f}, "
              f"control plane {server:.2f}")  # fmt: skip
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
    parser.add_argument(
        "--stacks",
        default="today,httpx-h2,aiohttp",
        help=f"comma-separated, of {', '.join(STACKS)}, each optionally with {JSON_ONLY}",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=WIDTH, help="requests in flight per batch")
    parser.add_argument(
        "--no-pin", action="store_true", help="control plane and client on both cores (as apply_2000 runs)"
    )
    args = parser.parse_args()
    stacks = [s for s in args.stacks.split(",") if s]
    unknown = [s for s in stacks if s.removesuffix(JSON_ONLY) not in STACKS]
    if unknown:
        raise SystemExit(f"--stacks: unknown {', '.join(unknown)} (known: {', '.join(STACKS)})")
    signal.signal(signal.SIGTERM, _stop)
    if not args.no_pin:
        os.sched_setaffinity(0, {CLIENT_CORE})  # before any thread: they and git inherit it
    plane, run = ControlPlane(), f"{int(time.time()) % 100_000:05d}"
    remove_namespaces(args.kubeconfig, wait=True)  # an interrupted earlier run may have left some
    samples: list[Sample] = []
    for n in range(args.rounds):
        for name in stacks[n % len(stacks) :] + stacks[: n % len(stacks)]:
            sample = initial_apply(
                args.kubeconfig, plane, name, f"{run}r{n}s{stacks.index(name)}", args.workers, not args.no_pin
            )
            samples.append(sample)
            print(f"round {n + 1} {name:9} {sample.usage} load {sample.load:.2f} [{sample.versions}, "
                  f"{sample.requests} requests, {sample.http:.2f} s in them; slowest batches "
                  f"{', '.join(f'{count} in {t:.2f} s' for t, count in sample.slowest)}]", flush=True)  # fmt: skip
    report(samples, stacks)


if __name__ == "__main__":
    main()
