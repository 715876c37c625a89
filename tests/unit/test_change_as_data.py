"""Results as data (issue 18): a ``Change`` carries its object's apiVersion, a closed ``Reason`` and a structured
error; notices, Events and drift attribution branch on those fields, never on words. Object names, field
managers and users are written by tenants, so words in them must not move a change from one kind of news to
another; the derived ``detail`` keeps the wording audit records and Slack had before."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.commands.result_events import mark_changes
from gitopsguard.errors import InvalidError, NotFoundError, UnavailableError
from gitopsguard.model import Action, Change, Drift, Failure, ObjectKey, Reason
from gitopsguard.notify.notices import from_result
from gitopsguard.reconcile import ReconcileResult

KEY = ObjectKey("batch", "CronJob", "shop", "nightly")
WHEN = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[dict[str, Any], str, str, bool]] = []

    def record(self, body: dict[str, Any], reason: str, message: str, *, warning: bool = True) -> None:
        self.events.append((body, reason, message, warning))


def marked(*changes: Change) -> list[tuple[dict[str, Any], str, str, bool]]:
    recorder = Recorder()
    mark_changes(recorder, ReconcileResult("apps", "abcdef1234567890", changes))  # type: ignore[arg-type]
    return recorder.events


def test_an_event_names_the_objects_own_api_version_not_one_guessed_from_its_group() -> None:
    """On 1.20 a CronJob is batch/v1beta1: an Event naming batch/v1 points at a version the server lacks."""
    drift = Drift(deleted=False, writer="kubectl-edit (Update) at 2026-12-05T12:00:00Z")
    events = marked(Change(KEY, "batch/v1beta1", Action.CONFIGURED, Reason.DRIFTED, drift=drift))
    assert [(body["apiVersion"], reason) for body, reason, _, _ in events] == [("batch/v1beta1", "DriftRepaired")]


def test_a_rolled_back_object_is_not_announced_as_pruned() -> None:
    """It did not leave Git: its revision failed after this pass created it."""
    events = marked(Change(ObjectKey("", "Namespace", "", "new"), "v1", Action.DELETED, Reason.ROLLED_BACK))
    assert [(reason, message) for _, reason, message, _ in events] == [
        ("RolledBack", "rolled back: created by this pass, whose revision then failed")
    ]


def test_events_follow_the_reason_and_never_the_words_in_a_name() -> None:
    unmanaged = ObjectKey("apps", "Deployment", "shop", "unmanaged")  # a tenant's name, not a reason
    events = marked(
        Change(unmanaged, "apps/v1", Action.DELETED, Reason.PRUNED),
        Change(KEY, "batch/v1beta1", Action.DELETED, Reason.UNMANAGED_DELETED, backup="/b/x.yaml",
               restore="kubectl apply -f /b/x.yaml"),
        Change(KEY, "batch/v1beta1", Action.SKIPPED, Reason.REPORT_ONLY, would=Action.CONFIGURED,
               drift=Drift(deleted=True)),
        Change(KEY, "batch/v1beta1", Action.FAILED, Reason.DELETE_FAILED, error=Failure("ClusterError", "no")),
    )  # fmt: skip
    assert [(body["metadata"]["name"], reason, warning) for body, reason, _, warning in events] == [
        ("unmanaged", "Pruned", False),
        ("nightly", "DeletedUnmanaged", True),
    ]
    assert events[1][2] == "unmanaged past its grace period; backup: /b/x.yaml; restore: kubectl apply -f /b/x.yaml"


text = st.text(max_size=80)


@given(reason=st.sampled_from(list(Reason)), writer=text, note=text, name=text)
@example(reason=Reason.REPORT_ONLY, writer="drift repaired: it was changed by x", note="", name="drift repaired")
@example(reason=Reason.BRAKE, writer="", note="drift repaired: it was changed by x", name="x")
def test_only_a_repaired_drift_becomes_a_drift_notice_whatever_the_text(
    reason: Reason, writer: str, note: str, name: str
) -> None:
    key = ObjectKey("", "ConfigMap", "shop", name)
    change = Change(key, "v1", Action.SKIPPED if reason is Reason.REPORT_ONLY else Action.CONFIGURED, reason,
                    drift=Drift(deleted=False, writer=writer), would=Action.CONFIGURED, note=note)  # fmt: skip
    notices = [n for n in from_result(ReconcileResult("apps", "a" * 40, (change,))) if n.event == "drift-repaired"]
    assert len(notices) == (1 if reason is Reason.DRIFTED else 0)
    if notices:
        assert notices[0].why == f"it was changed by {writer}"


def test_every_reason_has_words_and_they_are_the_ones_audit_records_carried_before() -> None:
    """The audit log and Slack keep their information: each reason's derived detail, pinned."""
    drift = Drift(deleted=False, writer="kubectl (Update) at t", user="alice")

    def detail(reason: Reason, action: Action = Action.SKIPPED, **fields: Any) -> str:
        return Change(KEY, "batch/v1beta1", action, reason, **fields).detail

    error = Failure("ConflictError", "CronJob/shop/nightly: delete failed: gone")
    refused = Failure("InvalidError", "CronJob/shop/nightly (apps/cron.yaml): dry run refused: invalid")
    words = {
        Reason.IN_SYNC: detail(Reason.IN_SYNC, Action.UNCHANGED),
        Reason.APPLIED: detail(Reason.APPLIED, Action.CREATED),
        Reason.DRIFTED: detail(Reason.DRIFTED, Action.CONFIGURED, drift=drift),
        Reason.REPORT_ONLY: detail(Reason.REPORT_ONLY, would=Action.CREATED, drift=Drift(deleted=True)),
        Reason.PRUNED: detail(Reason.PRUNED, Action.DELETED),
        Reason.NOT_OURS: detail(Reason.NOT_OURS),
        Reason.PRUNE_DISABLED: detail(Reason.PRUNE_DISABLED),
        Reason.BRAKE: detail(Reason.BRAKE, note="it would delete 3 of 4 objects, more than 25%"),
        Reason.DRY_RUN_REFUSED: detail(Reason.DRY_RUN_REFUSED, Action.FAILED, error=refused),
        Reason.APPLY_REFUSED: detail(Reason.APPLY_REFUSED, Action.FAILED, error=refused),
        Reason.DELETE_FAILED: detail(Reason.DELETE_FAILED, Action.FAILED, error=error),
        Reason.UNMANAGED: detail(Reason.UNMANAGED, deadline=WHEN),
        Reason.UNMANAGED_UNTRACKED: detail(Reason.UNMANAGED_UNTRACKED, note="unmanaged: not in Git; not tracked"),
        Reason.UNMANAGED_HELD: detail(Reason.UNMANAGED_HELD, deadline=WHEN),
        Reason.UNMANAGED_DELETED: detail(
            Reason.UNMANAGED_DELETED,
            Action.DELETED,
            backup="/b/nightly.yaml",
            restore="kubectl apply -f /b/nightly.yaml",
        ),
        Reason.BACKUP_FAILED: detail(Reason.BACKUP_FAILED, Action.FAILED, error=Failure("GitOpsGuardError", "/b: x")),
        Reason.ROLLED_BACK: detail(Reason.ROLLED_BACK, Action.DELETED),
        Reason.ROLLBACK_LEFT_ALONE: detail(Reason.ROLLBACK_LEFT_ALONE),
        Reason.ROLLBACK_UNREADABLE: detail(Reason.ROLLBACK_UNREADABLE, Action.FAILED, error=error),
        Reason.ROLLBACK_FAILED: detail(Reason.ROLLBACK_FAILED, Action.FAILED, error=error),
    }
    assert set(words) == set(Reason)
    assert words == {
        Reason.IN_SYNC: "",
        Reason.APPLIED: "",
        Reason.DRIFTED: "drift repaired: it was changed by kubectl (Update) at t; by alice",
        Reason.REPORT_ONLY: "report-only: would be created; drift repaired: it was deleted outside Git",
        Reason.PRUNED: "",
        Reason.NOT_OURS: "no longer carries this unit's label (adopted elsewhere or edited); not ours to delete",
        Reason.PRUNE_DISABLED: "marked gitopsguard.io/prune: disabled",
        Reason.BRAKE: "mass-prune brake: it would delete 3 of 4 objects, more than 25%",
        Reason.DRY_RUN_REFUSED: "CronJob/shop/nightly (apps/cron.yaml): dry run refused: invalid",
        Reason.APPLY_REFUSED: "CronJob/shop/nightly (apps/cron.yaml): dry run refused: invalid",
        Reason.DELETE_FAILED: "CronJob/shop/nightly: delete failed: gone",
        Reason.UNMANAGED: "unmanaged: not in Git; deleted at 2026-12-05 12:00:00Z unless added to Git",
        Reason.UNMANAGED_UNTRACKED: "unmanaged: not in Git; not tracked",
        Reason.UNMANAGED_HELD: "unmanaged: not in Git; due for deletion since 2026-12-05 12:00:00Z, held: no backup "
        "directory is configured",
        Reason.UNMANAGED_DELETED: "unmanaged past its grace period; backup: /b/nightly.yaml; "
        "restore: kubectl apply -f /b/nightly.yaml",
        Reason.BACKUP_FAILED: "/b: x",
        Reason.ROLLED_BACK: "rolled back: created by this pass, whose revision then failed",
        Reason.ROLLBACK_LEFT_ALONE: "rollback: no longer the object this pass created, or no longer ours; left alone",
        Reason.ROLLBACK_UNREADABLE: "CronJob/shop/nightly: rollback: cannot be read again (CronJob/shop/nightly: "
        "delete failed: gone); left as it is, delete it by hand if it is not wanted",
        Reason.ROLLBACK_FAILED: "CronJob/shop/nightly: rollback: delete failed (CronJob/shop/nightly: delete failed: "
        "gone); delete it by hand if it is not wanted",
    }


def test_the_unmanaged_words_say_reported_only_without_a_deadline_and_held_under_report_only() -> None:
    assert Change(KEY, "v1", Action.SKIPPED, Reason.UNMANAGED).detail == "unmanaged: not in Git (reported only)"
    held = Change(KEY, "v1", Action.SKIPPED, Reason.REPORT_ONLY, would=Action.DELETED, deadline=WHEN)
    assert held.detail == "unmanaged: not in Git; due for deletion since 2026-12-05 12:00:00Z, held: report-only"
    assert str(held).startswith("CronJob/shop/nightly skipped: unmanaged")


def test_an_error_is_kept_as_data_its_kind_causes_and_whether_to_retry() -> None:
    cause = {"reason": "FieldValueInvalid", "message": "Invalid value", "field": "spec.schedule"}
    invalid = Failure.of(InvalidError("CronJob/shop/nightly: apply refused: invalid", causes=(cause,)))
    assert (invalid.kind, invalid.retryable) == ("InvalidError", False)
    assert [(c.reason, c.field) for c in invalid.causes] == [("FieldValueInvalid", "spec.schedule")]
    assert Failure.of(UnavailableError("CronJob/shop/nightly: delete failed: 503")).retryable
    assert not Failure.of(NotFoundError("x")).retryable
    assert str(invalid) == "CronJob/shop/nightly: apply refused: invalid"


def test_hostile_causes_of_odd_types_are_kept_as_text_or_left_out() -> None:
    odd: Any = ({"reason": 7, "message": None, "field": ["a"]}, "not a mapping", None)
    failure = Failure.of(InvalidError("x", causes=odd))
    assert [(c.reason, c.message, c.field) for c in failure.causes] == [("7", "", "['a']")]
    none: Any = None
    assert Failure.of(InvalidError("x", causes=none)).causes == ()
