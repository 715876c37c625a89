"""What /healthz and /readyz say in each role of a replica (starting, standby, leading), over real HTTP."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request

import pytest

from gitopsguard import lifeline
from gitopsguard.notify.health import Health, Role
from gitopsguard.notify.metrics import Metrics, serve


def probe(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def served() -> tuple[Health, int]:
    health = Health()
    server = serve(("127.0.0.1", 0), Metrics(), health.ready, live=health.live)
    return health, server.server_port


def test_a_starting_replica_is_live_and_not_ready(served: tuple[Health, int]) -> None:
    health, port = served
    assert health.role is Role.STARTING
    assert probe(port, "/healthz") == (200, "ok (starting)\n")
    assert probe(port, "/readyz") == (503, "starting\n")


def test_a_standby_is_live_and_not_ready_unless_it_serves_admission(served: tuple[Health, int]) -> None:
    health, port = served
    health.standby("apps")
    assert probe(port, "/healthz") == (200, "ok (standby)\n")
    assert probe(port, "/readyz") == (503, "standby for unit apps, waiting for its lease\n")
    serving = [True]
    health.serving_admission(lambda: serving[0])
    assert probe(port, "/readyz") == (200, "standby for unit apps, waiting for its lease; serving admission\n")
    serving[0] = False  # stopping: no longer a place to send admission requests
    assert probe(port, "/readyz")[0] == 503


def test_the_leader_is_ready_only_while_its_loop_works(served: tuple[Health, int]) -> None:
    health, port = served
    works = [False]
    health.leading("apps", lambda: (works[0], "ready" if works[0] else "no reconcile attempt recently"))
    assert probe(port, "/readyz") == (503, "leading unit apps: no reconcile attempt recently\n")
    works[0] = True
    assert probe(port, "/readyz") == (200, "leading unit apps: ready\n")
    assert probe(port, "/healthz") == (200, "ok (leading)\n")


def test_a_dead_thread_fails_both_probes_whatever_the_role(
    served: tuple[Health, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    health, port = served
    monkeypatch.setattr(lifeline, "DEAD", threading.Event())
    health.leading("apps", lambda: (True, "ready"))
    health.serving_admission(lambda: True)
    lifeline.DEAD.set()
    assert probe(port, "/healthz") == (503, "a background thread died\n")
    assert probe(port, "/readyz") == (503, "a background thread died\n")


def test_a_leader_that_serves_admission_is_ready_before_its_loop_works(served: tuple[Health, int]) -> None:
    # The webhook's Service sends only to ready replicas (manifests/admission.yaml publishes no not-ready
    # address): a leader left out of it before its first pass would leave a one-replica install's webhook,
    # failurePolicy Fail, with nowhere to go.
    health, port = served
    health.serving_admission(lambda: True)
    health.leading("apps", lambda: (False, "no reconcile attempt recently"))
    assert probe(port, "/readyz") == (200, "leading unit apps: no reconcile attempt recently; serving admission\n")


def test_a_starting_replica_is_ready_once_it_serves_admission_and_not_after_it_stops(
    served: tuple[Health, int],
) -> None:
    health, port = served
    serving = [True]
    health.serving_admission(lambda: serving[0])
    assert probe(port, "/readyz") == (200, "starting; serving admission\n")
    serving[0] = False
    assert probe(port, "/readyz") == (503, "starting\n")


def test_a_standby_that_serves_admission_is_not_ready_until_it_judges_by_an_applied_revision(
    served: tuple[Health, int],
) -> None:
    # Before it has read an applied revision's policies a replica denies every request: in the Service beside
    # a leader that admits, it would refuse the writes that reach it (seen on the node: 126 of 636 refused).
    health, port = served
    judging = [False]
    health.serving_admission(lambda: True, judging=lambda: judging[0])
    health.standby("apps")
    assert probe(port, "/readyz") == (
        503,
        "standby for unit apps, waiting for its lease; serving admission, not judging yet (no applied revision's "
        "policies read)\n",
    )
    judging[0] = True
    assert probe(port, "/readyz")[0] == 200


def test_the_leader_that_serves_admission_is_ready_before_it_judges(served: tuple[Health, int]) -> None:
    # its own first apply goes through its webhook: out of the Service, nothing would ever be applied
    health, port = served
    health.serving_admission(lambda: True, judging=lambda: False)
    health.leading("apps", lambda: (False, "no reconcile attempt recently"))
    assert probe(port, "/readyz")[0] == 200
