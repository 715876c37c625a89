"""The loop's backoff goes by what the error says of itself (errors.py ``retryable``, ``delay``), against the REAL
API server behind the fault proxy (tests/faultproxy.py): a pass throttled past its request retries is tried again
after the server's Retry-After, and a refused object is reported once and not asked for again until something
changes or the interval passes (before: the loop asked again after 1, 2, 4, ... seconds whatever the error)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.cluster import retries
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.controller import Controller
from gitopsguard.errors import ApplyError
from gitopsguard.reconcile import ReconcileResult, Unit
from gitopsguard.source import GitSource, SourceSpec
from tests.faultproxy import Fault, FaultProxy, fault_proxy
from tests.gitrepo import Upstream
from tests.waiting import CONFIGMAP, eventually, value_of

pytestmark = pytest.mark.integration
INTERVAL = 600.0  # far past every test here: a pass they see again was asked for by the backoff


def dry_run_of(name: str) -> Callable[[str, str], bool]:
    return lambda method, path: method == "PATCH" and "dryRun=All" in path and f"/configmaps/{name}?" in path


@pytest.fixture
def proxy(admin_api: client.ApiClient, tmp_path: Path) -> Iterator[FaultProxy]:
    with fault_proxy(admin_api, tmp_path / "proxy") as running:
        yield running


@pytest.fixture
def loop(proxy: FaultProxy, namespace: str, tmp_path: Path) -> Iterator[Callable[[Upstream], list[ReconcileResult]]]:
    """Starts a controller whose every request goes through the proxy; its results, in order."""
    stops: list[tuple[threading.Event, Controller, threading.Thread]] = []

    def start(upstream: Upstream) -> list[ReconcileResult]:
        api = proxy.api()
        results: list[ReconcileResult] = []
        controller = Controller(
            Unit(namespace, "apps", namespace), GitSource(SourceSpec(upstream.url), tmp_path / "gg"), Applier(api),
            InventoryStore(api), RawApi(api), interval=INTERVAL, on_result=results.append,
        )  # fmt: skip
        stop = threading.Event()
        thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
        thread.start()
        stops.append((stop, controller, thread))
        return results

    yield start
    for stop, controller, thread in stops:
        stop.set()
        controller.wake()
        thread.join(15)


def repository(tmp_path: Path, text: str) -> Upstream:
    upstream = Upstream(tmp_path / "git")
    upstream.write("apps/cm.yaml", text)
    upstream.commit()
    return upstream


def test_a_refused_object_is_reported_once_and_not_asked_for_again_before_a_change(
    loop: Callable[[Upstream], list[ReconcileResult]], proxy: FaultProxy, tmp_path: Path
) -> None:
    # a number where the API wants a string: the server refuses it (400), and will refuse it every time
    results = loop(repository(tmp_path, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\ndata:\n  n: 1\n"))
    eventually(lambda: any(r.error for r in results), timeout=30)
    time.sleep(7.0)  # before: passes again after 1, 2 and 4 seconds
    asked = [p for p in proxy.forwarded if dry_run_of("bad")(*p.split(" ", 1))]
    failed = [r for r in results if r.error]
    assert len(asked) == 1, asked
    assert len(failed) == 1, [r.error for r in failed]
    assert isinstance(failed[0].failure, ApplyError) and not failed[0].failure.retryable


def test_a_pass_throttled_past_its_retries_is_tried_again_after_the_servers_retry_after(
    loop: Callable[[Upstream], list[ReconcileResult]], proxy: FaultProxy, admin_api: client.ApiClient,
    namespace: str, tmp_path: Path,
) -> None:  # fmt: skip
    throttled_at: list[float] = []
    asked_again_at: list[float] = []

    def noted(times: list[float]) -> Callable[[str, str], bool]:
        def match(method: str, path: str) -> bool:
            hit = dry_run_of("cm")(method, path)
            if hit:
                times.append(time.monotonic())
            return hit

        return match

    # Every try of the first pass's dry run is throttled (the request's own retries included), each asking for
    # 2 s; the next dry run, the second pass's, goes through (a stall of 0 s only notes when it came).
    throttle = proxy.add(Fault("throttle", noted(throttled_at), times=retries.TRIES + 1, retry_after="2"))
    proxy.add(Fault("stall", noted(asked_again_at), times=1, stall=0.0))
    results = loop(repository(tmp_path, CONFIGMAP.format(name="cm", value="1")))
    eventually(lambda: value_of(client.CoreV1Api(admin_api), "cm", namespace) == "1", timeout=60)
    assert len(throttle.hits) == retries.TRIES + 1, "the whole first pass was throttled for real"
    assert asked_again_at[0] - throttled_at[-1] >= 1.9, "the loop waited as long as the server asked"
    first = next(r for r in results if r.error)
    assert first.failure is not None and first.failure.retryable and first.failure.delay == 2.0
    eventually(lambda: results[-1].error is None, timeout=10)  # the pass that applied it has ended
