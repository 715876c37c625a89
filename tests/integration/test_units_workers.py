"""Units passed side by side (``run --unit-workers``, ``fleet_pool.py``) on the real API server, from a real
repository: a dependent's turn starts only after each of its dependencies' turns ended (pass and status
written), independent Units share the workers, and one worker keeps ``apply_order``.

Each Unit applies one ConfigMap. Every turn is timed where the loop takes it (``Fleet._serve_one``, wrapped:
the loop itself runs unchanged), so the test sees when each Unit's turn began and ended."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.cluster.units import UnitStore
from gitopsguard.fleet import Fleet, accounts
from gitopsguard.reconcile import ReconcileResult, Unit
from gitopsguard.source import GitSource, SourceSpec
from gitopsguard.units import readiness_of
from tests.gitrepo import Upstream
from tests.integration.test_units_crd import install_unit_crd
from tests.integration.test_units_loop import UNIT, configmap
from tests.waiting import eventually

pytestmark = pytest.mark.integration

# two chains and four Units on their own: c -> b -> a (c needs b, b needs a), z -> y
NEEDS = {"a": [], "b": ["a"], "c": ["b"], "y": [], "z": ["y"], "p": [], "q": [], "r": [], "s": []}


class Timed:
    """When each Unit's turns began and ended, in the loop's own process."""

    def __init__(self) -> None:
        self.turns: dict[str, list[tuple[float, float]]] = {}
        self.running, self.most = 0, 0
        self.reporting, self.most_reporting = 0, 0
        self._lock = threading.Lock()

    def report(self, result: ReconcileResult) -> None:
        """The CLI's ``on_result`` appends to one hash-chained audit log: it must be called one at a time."""
        with self._lock:
            self.reporting += 1
            self.most_reporting = max(self.most_reporting, self.reporting)
        time.sleep(0.05)
        with self._lock:
            self.reporting -= 1

    def wrap(self, fleet: Fleet) -> None:
        serve_one = fleet._serve_one

        def timed(spec: Any, live: Any, ready: Mapping[Any, Any]) -> Any:
            with self._lock:
                self.running += 1
                self.most = max(self.most, self.running)
            began = time.monotonic()
            try:
                return serve_one(spec, live, ready)
            finally:
                with self._lock:
                    self.running -= 1
                    self.turns.setdefault(spec.ref.name, []).append((began, time.monotonic()))

        fleet._serve_one = timed  # type: ignore[method-assign]


def _serving(admin_api: client.ApiClient, namespace: str, tmp_path: Path, workers: int) -> Iterator[Timed]:
    raw = RawApi(admin_api)
    install_unit_crd(raw)
    upstream = Upstream(tmp_path / "git")
    specs = {n: f"{{path: {n}, dependsOn: [{', '.join(f'{{name: {d}}}' for d in ds)}]}}" for n, ds in NEEDS.items()}
    upstream.write(
        "root/units.yaml", "".join(UNIT.format(name=n, namespace=namespace, spec=s) for n, s in specs.items())
    )
    for name in NEEDS:
        upstream.write(f"{name}/cm.yaml", configmap(name, namespace, "1"))
    upstream.commit()
    own = Applier(admin_api)
    timed, stop = Timed(), threading.Event()
    fleet = Fleet(Unit(f"{namespace}-root", "root", namespace, policies_path=None),
                  GitSource(SourceSpec(upstream.url), tmp_path / "gg"), own, InventoryStore(admin_api), raw,
                  interval=60, account_of=accounts(own), workers=workers,
                  on_result=timed.report)  # fmt: skip
    timed.wrap(fleet)
    thread = threading.Thread(target=fleet.run, args=(stop,), daemon=True)
    thread.start()
    units = UnitStore(raw)

    def all_ready() -> bool:
        ready = {u.name: readiness_of(u.status, u.generation).ready for u in units.list(namespace)}
        with timed._lock:  # a turn is recorded when it ends, a moment after its status was written (CI saw it)
            recorded = set(timed.turns)
        return all(ready.get(n) for n in NEEDS) and recorded >= set(NEEDS)

    try:
        eventually(all_ready, 120, every=0.5)
        yield timed
    finally:
        stop.set()
        fleet.wake()
        thread.join(20)


@pytest.fixture
def four(admin_api: client.ApiClient, namespace: str, tmp_path: Path) -> Iterator[Timed]:
    yield from _serving(admin_api, namespace, tmp_path, 4)


@pytest.fixture
def one(admin_api: client.ApiClient, namespace: str, tmp_path: Path) -> Iterator[Timed]:
    yield from _serving(admin_api, namespace, tmp_path, 1)


def test_a_dependents_turn_starts_only_after_each_of_its_dependencies_turns_ended(four: Timed) -> None:
    first = {name: turns[0] for name, turns in four.turns.items()}
    for name, dependencies in NEEDS.items():
        for dependency in dependencies:
            assert first[dependency][1] <= first[name][0], f"{name} began before {dependency}'s turn ended"


def test_independent_units_are_passed_side_by_side_on_the_workers(four: Timed) -> None:
    assert 2 <= four.most <= 4, f"{four.most} turns at once with 4 workers"


def test_results_are_reported_one_at_a_time_while_units_pass_side_by_side(four: Timed) -> None:
    assert four.most >= 2 and four.most_reporting == 1


def test_one_worker_passes_the_units_one_at_a_time_in_apply_order(one: Timed) -> None:
    assert one.most == 1
    began = sorted((turns[0][0], name) for name, turns in one.turns.items())
    # apply_order: dependencies first, ties by namespace and name
    assert [name for _, name in began] == ["a", "b", "c", "p", "q", "r", "s", "y", "z"]
