"""Objects the API server refused, as data: one FAILED change per object, with its typed error (kind,
message, the server's causes, whether to retry), carried by the error that refuses the revision."""

from __future__ import annotations

from collections.abc import Sequence

from gitopsguard.cluster.apply import Refused
from gitopsguard.errors import ApplyError
from gitopsguard.model import Action, Change, Failure, Reason
from gitopsguard.plan.prepare import Desired


class RefusedObjectsError(ApplyError):
    """A revision could not be applied because the server refused some of its objects; ``refused`` holds one
    FAILED change per object (reason DRY_RUN_REFUSED or APPLY_REFUSED). The message is as before: the summary,
    then one line per object, each starting with the object and its file."""

    def __init__(
        self, summary: str, refused: tuple[Change, ...], *, retryable: bool = False, delay: float | None = None
    ) -> None:
        super().__init__(summary, tuple(change.detail for change in refused), retryable=retryable, delay=delay)
        self.refused = refused


def refusals(refused: Sequence[Refused], desired: Sequence[Desired], reason: Reason) -> tuple[Change, ...]:
    """The refused objects as changes, each with the apiVersion Git gave it."""
    versions = {d.key: d.api_version for d in desired}
    return tuple(
        Change(r.key, versions.get(r.key, ""), Action.FAILED, reason, error=Failure.of(r.error)) for r in refused
    )
