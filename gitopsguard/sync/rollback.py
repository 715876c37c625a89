"""Undo a failed pass's creations: the Namespaces and CRDs a revision brought, created before the rest of it
failed its dry run (or its apply). Only what this pass created, still as it was, is deleted."""

from __future__ import annotations

from collections.abc import Sequence

from gitopsguard.cluster.apply import Applier, Created, OwnedSnapshot
from gitopsguard.errors import ApplyError, GitOpsGuardError
from gitopsguard.model import Action, Change, Failure, Reason
from gitopsguard.plan.prepare import prune_disabled
from gitopsguard.sync.refused import RefusedObjectsError


class RolledBackError(ApplyError):
    """A revision failed after some of its Namespaces or CRDs were created; ``undone`` holds the rollback's
    changes (each deletion, or why an object was left alone), for the audit log and notices; ``refused`` the
    objects whose refusal failed it."""

    def __init__(self, error: ApplyError, undone: tuple[Change, ...]) -> None:
        super().__init__(str(error), retryable=error.retryable, delay=error.delay)
        self.problems, self.undone = error.problems, undone
        self.refused = error.refused if isinstance(error, RefusedObjectsError) else ()  # what failed, as data


def roll_back(unit: str, created: Sequence[Created], applier: Applier) -> tuple[Change, ...]:
    """Delete, newest first, what this pass created (answered 201, with this unit's label) and still finds
    as it was: the same uid, still labelled ours, not marked prune: disabled. Anything else is left alone,
    and so is everything when the objects cannot be read again."""
    try:
        live = OwnedSnapshot(applier, unit).of((c.api_version, c.key) for c in created)  # read afresh
    except GitOpsGuardError as error:
        failure = Failure.of(error)
        return tuple(Change(c.key, c.api_version, Action.FAILED, Reason.ROLLBACK_UNREADABLE, error=failure)
                     for c in created)  # fmt: skip
    changes = []
    for made in reversed(created):
        body = live.get(made.key)
        if body is None or (body.get("metadata") or {}).get("uid") != made.uid or prune_disabled(body):
            changes.append(Change(made.key, made.api_version, Action.SKIPPED, Reason.ROLLBACK_LEFT_ALONE))
            continue
        refused: GitOpsGuardError | None
        try:
            refused = applier.delete(made.key, made.api_version, uid=made.uid)
        except GitOpsGuardError as error:
            refused = error
        if refused is None:
            changes.append(Change(made.key, made.api_version, Action.DELETED, Reason.ROLLED_BACK))
        else:
            changes.append(Change(made.key, made.api_version, Action.FAILED, Reason.ROLLBACK_FAILED,
                                  error=Failure.of(refused)))  # fmt: skip
    return tuple(changes)
