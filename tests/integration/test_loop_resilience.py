"""The continuous loop against hostile heads and long outages: it keeps running, keeps repairing the last
applied commit, and does no work at rest."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.controller import Controller
from gitopsguard.reconcile import ReconcileResult, Unit
from gitopsguard.source import GitSource, SourceSpec
from tests.gitrepo import Upstream

pytestmark = pytest.mark.integration

CONFIGMAP = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: "{value}"\n'


def eventually(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def value_of(core: client.CoreV1Api, name: str, namespace: str) -> str | None:
    try:
        return str(core.read_namespaced_config_map(name, namespace).data["value"])
    except ApiException as error:
        if error.status == 404:
            return None
        raise


class Running:
    """A controller on its own thread over a local repository, its results kept in order."""

    def __init__(self, controller: Controller, upstream: Upstream) -> None:
        self.controller, self.upstream, self.stop = controller, upstream, threading.Event()
        self.thread = threading.Thread(target=controller.run, args=(self.stop, upstream.bare), daemon=True)
        self.thread.start()

    def halt(self) -> None:
        self.stop.set()
        self.controller.wake()
        self.thread.join(15)
        assert not self.thread.is_alive(), "the loop stops when asked"


@pytest.fixture
def start(admin_api: client.ApiClient, namespace: str, tmp_path: Path) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def run(upstream: Upstream, results: list[ReconcileResult], **options: object) -> Running:
        controller = Controller(
            Unit(namespace, "apps", namespace), GitSource(SourceSpec(upstream.url), tmp_path / "gg"),
            Applier(admin_api), InventoryStore(admin_api), RawApi(admin_api), interval=60, on_result=results.append,
            **options,  # type: ignore[arg-type]
        )  # fmt: skip
        started.append(Running(controller, upstream))
        return started[-1]

    yield run
    for running in started:
        running.halt()


def test_a_loop_that_fails_1100_passes_in_a_row_keeps_running(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """Before: the 1,025th failure in a row raised OverflowError (2.0 ** 1024) and ended the loop."""
    configuration = client.Configuration()
    configuration.host = "http://127.0.0.1:9"  # nobody listens: every pass fails at once reading the inventory
    unreachable = client.ApiClient(configuration)
    upstream = Upstream(tmp_path / "git")
    stop = threading.Event()
    results: list[ReconcileResult] = []

    def on_result(result: ReconcileResult) -> None:
        results.append(result)
        if len(results) >= 1100:
            stop.set()
        controller.wake()  # as fast as the live cache or the repository watch could wake it

    controller = Controller(
        Unit(namespace, "apps", namespace), GitSource(SourceSpec(upstream.url), tmp_path / "gg"),
        Applier(admin_api), InventoryStore(unreachable), RawApi(admin_api), interval=30.0, on_result=on_result,
    )  # fmt: skip
    controller.run(stop)
    assert len(results) >= 1100 and all(r.error for r in results)


def test_a_loop_at_rest_over_a_local_repository_runs_no_passes(
    start: Callable[..., Running], admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """Before: the loop's own fetch read the repository, the read woke the loop, and it never rested."""
    upstream = Upstream(tmp_path / "git")
    upstream.write("apps/a.yaml", CONFIGMAP.format(name="a", value="1"))
    upstream.commit()
    results: list[ReconcileResult] = []
    start(upstream, results)
    eventually(lambda: value_of(client.CoreV1Api(admin_api), "a", namespace) == "1")
    time.sleep(2.0)  # the passes our own writes cause end after one quiet pass
    before = len(results)
    time.sleep(5.0)
    assert len(results) - before <= 1, f"{len(results) - before} passes in 5 s at rest (interval 60 s)"
