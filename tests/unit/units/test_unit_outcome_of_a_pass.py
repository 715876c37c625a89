"""commands/units.py::outcome_of: the recipe's ReconcileResult in the terms of a Unit's status, by the typed
failure (never by the text of the message)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gitopsguard.commands.units import outcome_of
from gitopsguard.errors import (
    ApplyError,
    GitOpsGuardError,
    PolicyBlockedError,
    PolicyError,
    RenderError,
    SourceError,
    TooManyRequestsError,
)
from gitopsguard.model import Action, Change, ObjectKey, Reason
from gitopsguard.reconcile import ReconcileResult
from gitopsguard.source.review import UnreviewedRevisionError
from gitopsguard.units import Phase, ready_message, status_of
from gitopsguard.units import Reason as Condition


def change(name: str, action: Action, reason: Reason) -> Change:
    return Change(ObjectKey("", "ConfigMap", "team-a", name), "v1", action, reason)


def failed(error: GitOpsGuardError, **extra: object) -> ReconcileResult:
    return ReconcileResult("team-a.apps", "abc123", (), error=str(error), failure=error, **extra)  # type: ignore[arg-type]


def test_a_pass_that_applied_counts_what_the_unit_owns_and_carries_the_request_it_served() -> None:
    result = ReconcileResult("team-a.apps", "abc123", (
        change("a", Action.CREATED, Reason.APPLIED), change("b", Action.UNCHANGED, Reason.IN_SYNC),
        change("c", Action.CONFIGURED, Reason.DRIFTED), change("gone", Action.DELETED, Reason.PRUNED),
        change("kept", Action.SKIPPED, Reason.PRUNE_DISABLED),
    ), brake=None)  # fmt: skip
    outcome = outcome_of(result, 4, handled="2026-12-05T12:00:00.000001Z")
    assert (outcome.phase, outcome.revision, outcome.objects, outcome.generation) == (Phase.SUCCEEDED, "abc123", 3, 4)
    assert status_of(outcome, None, datetime.now(UTC))["lastHandledReconcileAt"] == "2026-12-05T12:00:00.000001Z"


def test_a_pass_whose_deletions_the_brake_held_says_so() -> None:
    result = ReconcileResult("team-a.apps", "abc123", (), brake="9 of 10 objects would be deleted")
    assert outcome_of(result, 1).brake == "9 of 10 objects would be deleted"


@pytest.mark.parametrize(
    ("error", "reason", "stalled"),
    [(RenderError("teams/a/x.yaml:3: not valid YAML"), Condition.BUILD_FAILED, True),
     (PolicyBlockedError("2 objects denied", ("Deployment/team-a/web: privileged",)), Condition.POLICY_DENIED, True),
     (PolicyError("policies/p.yaml:2: unknown field"), Condition.BUILD_FAILED, True),
     (SourceError("https://git.example.com/x.git: fetch failed"), Condition.ARTIFACT_FAILED, True),
     (ApplyError("1 object refused", ("ConfigMap/team-a/x: invalid",)), Condition.FAILED, True),
     (TooManyRequestsError("ConfigMap/team-a/x: throttled"), Condition.FAILED, False)],
)  # fmt: skip
def test_a_failed_pass_is_read_by_its_typed_failure(error: GitOpsGuardError, reason: Condition, stalled: bool) -> None:
    outcome = outcome_of(failed(error), 2)
    assert (outcome.phase, outcome.failure, outcome.retryable) == (Phase.FAILED, reason, not stalled)
    status = status_of(outcome, None, datetime.now(UTC))
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["reason"] == reason.value and status["lastError"] == str(error)
    assert conditions["Ready"]["message"].startswith(str(error).splitlines()[0])
    assert conditions["Stalled"]["status"] == ("True" if stalled else "False")


@pytest.mark.parametrize("lines", [1, 2, 40])
@pytest.mark.parametrize("width", [10, 199, 200, 201, 5000])
def test_a_failures_conditions_say_it_in_one_short_line_and_the_last_error_whole(lines: int, width: int) -> None:
    """`kubectl get units` shows the Ready message in a column: a cell of many lines widened every row of the
    table to its longest line (1,500 characters in the demo), so the conditions hold the first line alone."""
    error = "\n".join(f"{i}: " + "x" * width for i in range(lines))
    status = status_of(outcome_of(failed(ApplyError(error)), 1), None, datetime.now(UTC))
    for condition in status["conditions"]:
        message = condition.get("message", "")
        assert "\n" not in message and len(message) <= 260, condition
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")["message"]
    whole = lines == 1 and len(error) <= 200
    assert ready == error if whole else ready.endswith("(the whole error: status.lastError)")
    assert status["lastError"] == error[:4093] + ("..." if len(error) > 4096 else "")
    assert ready_message(status) == status["lastError"], "the CLI prints the failure whole"
    applied = status_of(outcome_of(ReconcileResult("team-a.apps", "abc", (), brake=None), 1), status, datetime.now(UTC))
    assert ready_message(applied) == "Applied revision abc", "a success after it says so, not the old error"


def test_an_unreviewed_head_is_read_as_such() -> None:
    error = UnreviewedRevisionError("a" * 40, "b" * 40, "sneaky", "mallory", ("apps/x.yaml: no rule allows it",))
    outcome = outcome_of(failed(error, unreviewed=error), 1)
    assert outcome.failure is Condition.UNREVIEWED and outcome.message.startswith("revision aaaaaaaaaaaa is refused")
