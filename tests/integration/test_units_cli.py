"""`gitopsguard get units`, `suspend|resume unit` and `reconcile unit` against the real API server.

No controller serves Units yet (a later step wires them into the loop): here the test plays the controller
where one is needed, writing the status through /status as the controller will, and the command must wait
for exactly the request it made."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner, Result
from kubernetes import client

from gitopsguard.cli import main
from gitopsguard.cluster.rest import RawApi
from gitopsguard.cluster.units import REQUESTED_AT, UnitStore
from gitopsguard.units import PassOutcome, Phase, Reason, status_of
from tests.integration.conftest import LiveCluster
from tests.integration.test_units_crd import install_unit_crd, make_unit

pytestmark = pytest.mark.integration


@pytest.fixture
def store(admin_api: client.ApiClient) -> UnitStore:
    install_unit_crd(RawApi(admin_api))
    return UnitStore(RawApi(admin_api))


def gitopsguard(cluster: LiveCluster, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--kubeconfig", str(cluster.kubeconfig)])


class PlayedController:
    """Serves reconcile requests of one Unit as the controller will: after ``delay`` seconds, the status of
    the pass, with the value it served copied into lastHandledReconcileAt."""

    def __init__(self, store: UnitStore, namespace: str, name: str, outcome: PassOutcome, delay: float = 1.0):
        self.store, self.namespace, self.name, self.outcome, self.delay = store, namespace, name, outcome, delay
        self.served: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> PlayedController:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        self.thread.join(10)

    def _serve(self) -> None:
        while not self.stop.wait(0.2):
            unit = self.store.get(self.namespace, self.name)
            asked = unit.requested_at
            if asked and asked != unit.status.get("lastHandledReconcileAt") and asked not in self.served:
                time.sleep(self.delay)  # the pass takes a while: the command must wait for it
                outcome = PassOutcome(**{**self.outcome.__dict__, "handled": asked})
                self.store.write_status(self.store.get(self.namespace, self.name),
                                        status_of(outcome, unit.status, datetime.now(UTC)))  # fmt: skip
                self.served.append(asked)


@pytest.fixture
def unit(admin_api: client.ApiClient, store: UnitStore, namespace: str) -> Iterator[str]:
    make_unit(RawApi(admin_api), namespace, "apps", {"path": "teams/a"})
    yield "apps"


def test_get_units_shows_each_unit_as_kubectl_would(
    dev_cluster: LiveCluster, admin_api: client.ApiClient, store: UnitStore, namespace: str
) -> None:
    make_unit(RawApi(admin_api), namespace, "apps", {"path": "teams/a"})
    make_unit(RawApi(admin_api), namespace, "infra", {"path": "platform", "suspend": True})
    failed = PassOutcome(Phase.FAILED, 1, "bad", message="teams/a/x.yaml:3: \x1b[2J not valid YAML\nforged line")
    store.write_status(store.get(namespace, "apps"), status_of(failed, None, datetime.now(UTC)))
    result = gitopsguard(dev_cluster, "get", "units", "-n", namespace)
    assert result.exit_code == 0, result.output
    header, apps, infra = result.output.splitlines()
    assert header.split() == ["NAME", "READY", "STATUS", "REVISION", "OBJECTS", "SUSPENDED", "AGE"]
    assert apps.startswith("apps ") and " False " in apps and "\\x1b" in apps and "\x1b" not in apps  # escaped
    assert "teams/a/x.yaml:3: \\x1b[2J not valid YAML" in apps and "forged line" not in apps  # its first line
    assert infra.split()[:3] == ["infra", "Unknown", "-"] and infra.split()[-2] == "true"
    every = gitopsguard(dev_cluster, "get", "units", "-A")
    assert every.exit_code == 0 and every.output.split()[:2] == ["NAMESPACE", "NAME"], every.output
    assert [line.split()[1] for line in every.output.splitlines() if line.startswith(namespace)] == ["apps", "infra"]


def test_suspend_and_resume_set_the_spec_and_leave_an_event(
    dev_cluster: LiveCluster, admin_api: client.ApiClient, store: UnitStore, namespace: str, unit: str
) -> None:
    result = gitopsguard(dev_cluster, "suspend", "unit", unit, "-n", namespace)
    assert result.exit_code == 0 and result.output.strip() == f"Unit/{namespace}/apps suspended", result.output
    assert store.get(namespace, unit).body["spec"]["suspend"] is True
    assert gitopsguard(dev_cluster, "resume", "unit", unit, "-n", namespace).exit_code == 0
    assert store.get(namespace, unit).body["spec"]["suspend"] is False
    reasons = [str(e.reason) for e in client.CoreV1Api(admin_api).list_namespaced_event(namespace).items]
    assert sorted(reasons) == ["Resumed", "Suspended"]


def test_reconcile_unit_waits_for_the_controller_to_serve_its_request_and_prints_the_result(
    dev_cluster: LiveCluster, store: UnitStore, namespace: str, unit: str
) -> None:
    # An older request, already served: its answer is not this command's.
    old = PassOutcome(Phase.SUCCEEDED, 1, "old", handled="2026-01-01T00:00:00Z")
    store.write_status(store.get(namespace, unit), status_of(old, None, datetime.now(UTC)))
    applied = PassOutcome(Phase.SUCCEEDED, 1, "main@abc123", objects=4)
    with PlayedController(store, namespace, unit, applied, delay=1.5) as controller:
        started = time.monotonic()
        result = gitopsguard(dev_cluster, "reconcile", "unit", unit, "-n", namespace, "--timeout", "30s")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (f"Unit/{namespace}/apps: Ready True (ReconciliationSucceeded): Applied revision "
                                     "main@abc123")  # fmt: skip
    assert time.monotonic() - started >= 1.5  # it waited for the pass, not for any answer
    assert controller.served == [store.get(namespace, unit).body["metadata"]["annotations"][REQUESTED_AT]]


def test_reconcile_unit_exits_1_when_the_served_pass_left_it_not_ready(
    dev_cluster: LiveCluster, store: UnitStore, namespace: str, unit: str
) -> None:
    broken = "teams/a/x.yaml:3: not valid YAML\nits second line"  # the conditions hold the first: printed whole
    failed = PassOutcome(Phase.FAILED, 1, "bad", failure=Reason.BUILD_FAILED, message=broken)
    with PlayedController(store, namespace, unit, failed, delay=0):
        result = gitopsguard(dev_cluster, "reconcile", "unit", unit, "-n", namespace, "--timeout", "30s")
    assert result.exit_code == 1, result.output
    assert "Ready False (BuildFailed): teams/a/x.yaml:3: not valid YAML" in result.output
    assert "its second line" in result.output and "status.lastError" not in result.output


def test_reconcile_unit_says_what_to_do_when_no_controller_serves_it(
    dev_cluster: LiveCluster, store: UnitStore, namespace: str, unit: str
) -> None:
    result = gitopsguard(dev_cluster, "reconcile", "unit", unit, "-n", namespace, "--timeout", "3s")
    assert result.exit_code == 2
    assert result.output.startswith(f"error: Unit/{namespace}/apps: no controller served the reconcile request ")
    assert "within 3s (it never served one). Is gitopsguard running with Units in this cluster?" in result.output
    assert store.get(namespace, unit).requested_at  # the request stays for the controller to serve later


def test_reconcile_unit_refuses_a_suspended_unit_at_once(
    dev_cluster: LiveCluster, store: UnitStore, namespace: str, unit: str
) -> None:
    store.set_suspend(namespace, unit, True)
    started = time.monotonic()
    result = gitopsguard(dev_cluster, "reconcile", "unit", unit, "-n", namespace, "--timeout", "30s")
    assert result.exit_code == 2 and time.monotonic() - started < 10
    assert f"Unit/{namespace}/apps: suspended, so no controller reconciles it; resume it first" in result.output


def test_reconcile_unit_of_a_unit_that_does_not_exist_names_it(
    dev_cluster: LiveCluster, store: UnitStore, namespace: str
) -> None:
    result = gitopsguard(dev_cluster, "reconcile", "unit", "nope", "-n", namespace)
    assert result.exit_code == 2 and result.output.startswith(f"error: Unit/{namespace}/nope: ")
