"""Issue 18: the 2,020-object initial apply over the HTTP stack in use (aiohttp, `cluster/http.py`), with the
control plane on one core and the client on the other, as a real controller in a Pod of its own sees it.

    PYTHONPATH=$PWD .venv/bin/python bench/http_stack.py [--rounds 3] [--no-pin]

Each round runs one `gitopsguard reconcile` pass of apply_2000's 2,020 objects, under namespace names of its
own, as apply_2000's earlier rounds do. For the timed pass only, every thread of etcd, the API server and the
controller-manager is pinned to core 0 (`taskset -a -cp 0 PID`), and put back on 0,1 after it, even on
failure; this process and its children (git) run on core 1 throughout (`--no-pin`: all on both cores, as
apply_2000 measures). Prints the wall time, the client's CPU and the control plane's per pass, the load
average before each, the time spent in requests and the slowest batches, and the medians. If the process is
killed hard mid-pass, `bench/affinity.py --restore` puts the control plane back.

The comparisons this decided (the hand-written HTTP/1.1 stack against httpx over HTTP/2 and aiohttp; then
the writes' answers in protobuf against JSON) ran through earlier versions of this file, in git history
(`bench/httpstacks.py` until 5be1623, the `--answers` switch in 5be1623); the numbers are in bench/README.md.
To compare another stack, subclass `Http` as `Timed` does and swap it in at `rest.Http`.
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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.affinity import control_plane_pids, pinned
from bench.apply_2000 import objects, remove_namespaces
from bench.controlplane import ControlPlane, Usage
from gitopsguard.cluster import connect, rest
from gitopsguard.cluster.apply import WIDTH, Applier
from gitopsguard.cluster.http import Answer, Call, Http
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
STACK = "aiohttp"


@dataclass(frozen=True)
class Sample:
    answers: str
    usage: Usage
    load: float  # 1-minute load average just before the pass
    requests: int  # sent through cluster/http.py
    http: float  # wall seconds the pass spent waiting on requests and batches
    slowest: tuple[tuple[float, int], ...]  # the 3 slowest batches: (seconds, requests)


class Timed(Http):
    """The HTTP stack in use, with the wall time spent in it and the requests sent counted (the rest of the
    pass is fetching, rendering, discovery and the plan: the same code whatever the stack)."""

    made: ClassVar[list[Timed]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seconds, self.requests = 0.0, 0
        self.batches: list[tuple[float, int]] = []  # (seconds, requests) of each send_all
        Timed.made.append(self)

    def send(self, method: str, target: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        start = time.perf_counter()
        try:
            return super().send(method, target, body, headers)
        finally:
            self.seconds, self.requests = self.seconds + time.perf_counter() - start, self.requests + 1

    def send_all(self, calls: Sequence[Call], width: int) -> list[Answer]:
        start = time.perf_counter()
        try:
            return super().send_all(calls, width)
        finally:
            took = time.perf_counter() - start
            self.seconds, self.requests = self.seconds + took, self.requests + len(calls)
            self.batches.append((took, len(calls)))


@contextmanager
def timed() -> Iterator[list[Timed]]:
    """RawApi objects made in the block are timed; yields the Http objects made."""
    saved, Timed.made = rest.Http, []  # type: ignore[attr-defined]
    setattr(rest, "Http", Timed)  # noqa: B010 (where RawApi reads it)
    try:
        yield Timed.made
    finally:
        setattr(rest, "Http", saved)  # noqa: B010


def initial_apply(kubeconfig: Path, plane: ControlPlane, name: str, tag: str, workers: int, pin: bool) -> Sample:
    """One reconcile pass applying the 2,020 objects into a fresh unit, timed with the control plane pinned;
    removes its namespaces (and waits) before returning."""
    api = connect(kubeconfig)
    with tempfile.TemporaryDirectory() as tmp, timed() as made:
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
        finally:
            remove_namespaces(kubeconfig, wait=True)
            forget = ["delete", "configmap", "-n", store.namespace, f"gitopsguard-inventory-{unit.name}"]
            subprocess.run([kubectl(), "--kubeconfig", str(kubeconfig), *forget], capture_output=True, check=False)
    if requests < 4000:  # 2,020 dry runs and 2,020 applies at least
        raise SystemExit(f"{name}: only {requests} requests were counted: the pass did not go through Timed")
    return Sample(name, usage, load, requests, http, slowest)


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


def report(samples: list[Sample], variants: list[str]) -> None:
    print("\nmedians (wall s, of it in requests, client CPU-s, API server + etcd + controller-manager CPU-s):")
    medians: dict[str, float] = {}
    for name in variants:
        mine = [s for s in samples if s.answers == name]
        if not mine:
            continue
        medians[name] = statistics.median(s.usage.wall for s in mine)
        client = statistics.median(s.usage.cpu["client"] for s in mine)
        server = statistics.median(sum(v for k, v in s.usage.cpu.items() if k != "client") for s in mine)
        http = statistics.median(s.http for s in mine)
        walls = ", ".join(f"{s.usage.wall:.2f}" for s in mine)
        print(f"  {name:9} wall {medians[name]:.2f} s ({walls}), in requests {http:.2f} s, client {client:.2f}, "
              f"control plane {server:.2f}")  # fmt: skip


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that put the control plane back


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", type=Path, default=StateLayout.default().kubeconfig)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=WIDTH, help="requests in flight per batch")
    parser.add_argument(
        "--no-pin", action="store_true", help="control plane and client on both cores (as apply_2000 runs)"
    )
    args = parser.parse_args()
    stacks = [STACK]
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
            print(f"round {n + 1} {name:9} {sample.usage} load {sample.load:.2f} ["
                  f"{sample.requests} requests, {sample.http:.2f} s in them; slowest batches "
                  f"{', '.join(f'{count} in {t:.2f} s' for t, count in sample.slowest)}]", flush=True)  # fmt: skip
    report(samples, stacks)


if __name__ == "__main__":
    main()
