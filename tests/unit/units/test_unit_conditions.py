"""units/conditions.py: a pass's outcome as Flux-style status conditions, transition times kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gitopsguard.units import PassOutcome, Phase, Reason, readiness_of, status_of

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def when(status: dict[str, Any], kind: str) -> str:
    return str(next(c["lastTransitionTime"] for c in status["conditions"] if c["type"] == kind))


def test_a_successful_pass_is_ready_with_its_revision_and_object_count() -> None:
    status = status_of(PassOutcome(Phase.SUCCEEDED, 3, "abc123", objects=4, handled="2026-12-05T12:00:00Z"), None, T0)
    assert conditions(status) == {"Ready": ("True", "ReconciliationSucceeded"),
                                  "Reconciling": ("False", "ReconciliationSucceeded"),
                                  "Stalled": ("False", "ReconciliationSucceeded")}  # fmt: skip
    assert status["lastAppliedRevision"] == status["lastAttemptedRevision"] == "abc123"
    assert status["objects"] == 4 and status["observedGeneration"] == 3 and status["lastError"] is None
    assert status["lastHandledReconcileAt"] == "2026-12-05T12:00:00Z"
    assert all(c["observedGeneration"] == 3 and c["lastTransitionTime"] == "2026-12-05T12:00:00Z"
               for c in status["conditions"])  # fmt: skip


def test_a_condition_keeps_its_transition_time_while_its_status_stays() -> None:
    build_failed = PassOutcome(Phase.FAILED, 1, "bad1", failure=Reason.BUILD_FAILED, message="a.yaml:3: x")
    first = status_of(build_failed, None, T0)
    second = status_of(PassOutcome(Phase.FAILED, 1, "bad2", failure=Reason.POLICY_DENIED, message="denied"), first, T1)
    assert conditions(second)["Ready"] == ("False", "PolicyDenied")
    assert when(second, "Ready") == "2026-12-05T12:00:00Z"  # not Ready since the first failure
    third = status_of(PassOutcome(Phase.SUCCEEDED, 1, "good"), second, T1)
    assert when(third, "Ready") == "2026-12-05T12:05:00Z" and when(third, "Stalled") == "2026-12-05T12:05:00Z"


def test_a_failure_keeps_the_last_applied_revision_and_says_why() -> None:
    good = status_of(PassOutcome(Phase.SUCCEEDED, 1, "good", objects=4), None, T0)
    bad = status_of(PassOutcome(Phase.FAILED, 2, "bad", failure=Reason.BUILD_FAILED, message="apps/x.yaml:2: no"),
                    good, T1)  # fmt: skip
    assert bad["lastAppliedRevision"] == "good" and bad["lastAttemptedRevision"] == "bad" and bad["objects"] == 4
    assert bad["lastError"] == "apps/x.yaml:2: no" and bad["observedGeneration"] == 2
    assert conditions(bad) == {"Ready": ("False", "BuildFailed"), "Reconciling": ("False", "BuildFailed"),
                               "Stalled": ("True", "BuildFailed")}  # fmt: skip


def test_a_retryable_failure_is_reconciling_not_stalled() -> None:
    status = status_of(PassOutcome(Phase.FAILED, 1, "x", retryable=True, message="throttled"), None, T0)
    assert conditions(status) == {"Ready": ("False", "ReconciliationFailed"),
                                  "Reconciling": ("True", "ProgressingWithRetry"),
                                  "Stalled": ("False", "ReconciliationSucceeded")}  # fmt: skip


def test_a_unit_waiting_for_a_dependency_says_which_and_keeps_its_revisions() -> None:
    good = status_of(PassOutcome(Phase.SUCCEEDED, 1, "good", objects=2), None, T0)
    waiting = status_of(PassOutcome(Phase.WAITING, 1, "new", message="waiting for Unit/platform/infra: not Ready: "
                                    "HealthCheckFailed"), good, T1)  # fmt: skip
    assert conditions(waiting)["Ready"] == ("False", "DependencyNotReady")
    ready = next(c for c in waiting["conditions"] if c["type"] == "Ready")
    assert ready["message"] == "waiting for Unit/platform/infra: not Ready: HealthCheckFailed"
    assert waiting["lastAttemptedRevision"] == "good"  # nothing was attempted


def test_a_suspended_unit_keeps_its_ready_status_so_its_dependents_go_on() -> None:
    good = status_of(PassOutcome(Phase.SUCCEEDED, 1, "good"), None, T0)
    suspended = status_of(PassOutcome(Phase.SUSPENDED, 2), good, T1)
    assert conditions(suspended)["Ready"] == ("True", "Suspended") and when(suspended, "Ready") == when(good, "Ready")
    assert status_of(PassOutcome(Phase.SUSPENDED, 1), None, T0)["conditions"][0]["status"] == "Unknown"


def test_health_that_never_comes_is_not_ready_with_its_reason_but_applied() -> None:
    status = status_of(PassOutcome(Phase.UNHEALTHY, 1, "rev", message="Deployment/a/web: 0/1 available"), None, T0)
    assert conditions(status)["Ready"] == ("False", "HealthCheckFailed") and status["lastAppliedRevision"] == "rev"


def test_deletions_held_by_the_brake_are_ready_but_say_so() -> None:
    status = status_of(PassOutcome(Phase.SUCCEEDED, 1, "rev", brake="12 of 20 objects would go"), None, T0)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "PruneHeld")
    assert "12 of 20 objects would go" in ready["message"]


def test_a_huge_error_is_cut_to_a_bounded_message() -> None:
    status = status_of(PassOutcome(Phase.FAILED, 1, "x", message="e" * 100_000), None, T0)
    assert len(status["lastError"]) <= 4096 and all(len(c.get("message", "")) <= 4096 for c in status["conditions"])


def test_a_hostile_previous_status_is_read_as_no_status() -> None:
    hostile: list[Any] = [{"conditions": "Ready"}, {"conditions": [None, 3, {"type": "Ready", "status": ["True"]}]}, []]
    for previous in hostile:
        status = status_of(PassOutcome(Phase.SUCCEEDED, 1, "x"), previous, T0)
        assert conditions(status)["Ready"] == ("True", "ReconciliationSucceeded")


def test_a_dependency_counts_as_ready_only_for_its_current_generation() -> None:
    status = status_of(PassOutcome(Phase.SUCCEEDED, 1, "x"), None, T0)
    assert readiness_of(status, 1).ready
    stale = readiness_of(status, 2)  # the spec changed since: what Ready said is about the old spec
    assert not stale.ready and stale.reason == "Progressing"
    assert readiness_of(None, 1).reason == "NotReconciled"
    failed = readiness_of(status_of(PassOutcome(Phase.FAILED, 1, "y", message="boom"), status, T1), 1)
    assert (failed.ready, failed.reason, failed.message) == (False, "ReconciliationFailed", "boom")


def test_no_status_field_is_an_empty_string_which_the_api_server_would_refuse() -> None:
    """kube-apiserver 1.20 reads "" in a custom resource as null and refuses the write (seen on the dev cluster)."""
    previous = {"lastError": "", "lastAppliedRevision": "", "conditions": []}
    for outcome in (PassOutcome(Phase.SUCCEEDED, 1, "x", handled=""), PassOutcome(Phase.FAILED, 1, "y"),
                    PassOutcome(Phase.WAITING, 1), PassOutcome(Phase.SUSPENDED, 1)):  # fmt: skip
        status = status_of(outcome, previous, T0)
        assert "" not in status.values(), status
        assert all("" not in condition.values() for condition in status["conditions"]), status
