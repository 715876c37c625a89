"""A Unit's ``status`` from what one pass came to, as Flux's kustomize-controller writes it, so that tools
which read Flux's (``kubectl wait --for=condition=Ready``, kstatus) read ours.

Pure: the pass is told in a small value of this module (``PassOutcome``); the composition root translates a
``reconcile.ReconcileResult`` into one (``units/`` does not import the recipe). Three conditions are always
written: ``Ready``, ``Reconciling`` and ``Stalled``. A condition's ``lastTransitionTime`` moves only when its
status does: the time the Unit *became* not Ready, not the time of the latest failed try.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from gitopsguard.units.order import Readiness
from gitopsguard.visible import visible

SUMMARY_CHARS = 200  # a failure's line in the conditions; status.lastError holds it whole
MAX_MESSAGE_CHARS = 4096  # conditions are read by people in `kubectl get`; the API server takes 32 KiB
HANDLED_CHARS = 256  # of a reconcile request's value, kept in status.lastHandledReconcileAt


class Phase(StrEnum):
    """Where a pass got to."""

    SUCCEEDED = "succeeded"  # the revision is applied (and healthy, when the Unit waits)
    FAILED = "failed"  # the revision was not applied (``failure`` says at which step)
    UNHEALTHY = "unhealthy"  # applied, but what it applied did not become healthy within the timeout
    WAITING = "waiting"  # not tried: a dependency is not Ready
    SUSPENDED = "suspended"  # not tried: spec.suspend
    PROGRESSING = "progressing"  # a pass is under way


class Reason(StrEnum):
    """The closed set of condition reasons (Flux's names where Flux has one)."""

    SUCCEEDED = "ReconciliationSucceeded"
    FAILED = "ReconciliationFailed"  # the apply failed (the server refused objects)
    BUILD_FAILED = "BuildFailed"  # the path did not render
    POLICY_DENIED = "PolicyDenied"  # the policy gate refused the revision
    UNREVIEWED = "UnreviewedRevision"  # the head holds a change the review rules did not allow
    ARTIFACT_FAILED = "ArtifactFailed"  # the source could not be fetched
    INVALID_SPEC = "InvalidSpec"  # the Unit itself cannot be served (its spec, its dependencies, its origin)
    HEALTH_CHECK_FAILED = "HealthCheckFailed"
    DEPENDENCY_NOT_READY = "DependencyNotReady"
    SUSPENDED = "Suspended"
    PROGRESSING = "Progressing"
    RETRYING = "ProgressingWithRetry"
    PRUNE_HELD = "PruneHeld"  # applied; deletions held by the mass-prune brake


@dataclass(frozen=True)
class PassOutcome:
    """What one pass over a Unit came to, in the terms of its status."""

    phase: Phase
    generation: int  # the spec's metadata.generation this pass served
    revision: str | None = None  # the commit tried (None: not tried, or not known)
    objects: int | None = None  # how many objects the Unit owns afterwards (None: unchanged)
    failure: Reason = Reason.FAILED  # FAILED: at which step
    retryable: bool = False  # FAILED: whether the same pass may succeed later unchanged (else: Stalled)
    message: str = ""  # FAILED / UNHEALTHY: the error; WAITING: what it waits for
    brake: str = ""  # SUCCEEDED: why the mass-prune brake held deletions back
    handled: str | None = None  # the reconcile.gitopsguard.io/requestedAt value this pass served


def status_of(outcome: PassOutcome, previous: Mapping[str, Any] | None, now: datetime) -> dict[str, Any]:
    """The Unit's new ``status``: ``previous`` (the live one, or None) moved on by ``outcome`` at ``now``, as a
    JSON merge patch of ``/status``: a field that is None is removed. No field is ever an empty string: the
    1.20 API server reads "" in a custom resource as null and refuses it (verified on the dev cluster)."""
    previous = previous if isinstance(previous, Mapping) else {}
    # A tenant's text reaches the messages (a file name, a line of YAML, the server quoting an object) and
    # `kubectl get units` prints them as they are: nothing a terminal would act on is kept (``visible``).
    outcome = replace(outcome, message=visible(outcome.message, keep="\n\t"))
    status: dict[str, Any] = {k: previous[k] for k in _KEPT if previous.get(k) not in (None, "")}
    status["observedGeneration"] = outcome.generation
    if outcome.revision and outcome.phase not in (Phase.WAITING, Phase.SUSPENDED):
        status["lastAttemptedRevision"] = outcome.revision
        if outcome.phase in (Phase.SUCCEEDED, Phase.UNHEALTHY):
            status["lastAppliedRevision"] = outcome.revision
    if outcome.objects is not None:
        status["objects"] = outcome.objects
    if outcome.phase in (Phase.FAILED, Phase.UNHEALTHY):
        status["lastError"] = _bounded(outcome.message) or f"{outcome.phase.value} (no message)"
    elif outcome.phase is Phase.SUCCEEDED:
        status["lastError"] = None
    if outcome.handled:
        status["lastHandledReconcileAt"] = handled_as(outcome.handled)
    stamped = {c.get("type"): c for c in previous.get("conditions") or () if isinstance(c, Mapping)}
    status["conditions"] = [
        _stamped(kind, value, reason, message, outcome.generation, stamped.get(kind), now)
        for kind, (value, reason, message) in _conditions(outcome, stamped).items()
    ]
    return status


def handled_as(requested: str) -> str:
    """A reconcile request's value as ``status.lastHandledReconcileAt`` keeps it once served: shown (``visible``)
    and bounded. What is compared with that field, so that a value holding a character ``visible`` escapes, or
    a long one, counts as served once it is (it stayed "asked for" in every round: a pass each round)."""
    return visible(requested)[:HANDLED_CHARS]


def request_answered(requested: str | None, status: Mapping[str, Any]) -> bool:
    """Whether a Unit's reconcile request (``requested``, None when none was made) is served in ``status``."""
    return requested is None or status.get("lastHandledReconcileAt") == handled_as(requested)


def readiness_of(status: Mapping[str, Any] | None, generation: int, commit: str = "") -> Readiness:
    """Whether a Unit counts as Ready for its dependents: Ready True for its current spec (a Ready of an older
    generation says nothing about what the new spec applies) and, given the round's ``commit``, at that commit
    (its folder may have changed with the same spec; another replica may not have served it yet), as Flux's
    ``dependsOn`` asks the dependency's ``lastAppliedRevision`` to be the source's revision. A suspended one's
    Ready counts as it is."""
    status = status if isinstance(status, Mapping) else {}
    ready = next((c for c in status.get("conditions") or () if isinstance(c, Mapping) and c.get("type") == "Ready"),
                 None)  # fmt: skip
    if ready is None:
        return Readiness(False, "NotReconciled", "it has no Ready condition yet")
    if status.get("observedGeneration") != generation:
        return Readiness(False, "Progressing", f"its generation {generation} is not reconciled yet")
    reason, message = str(ready.get("reason") or ""), str(ready.get("message") or "")
    # a suspended Unit applies no commit, and its dependents need not stop (its Ready is kept: ``_conditions``)
    moving = reason != Reason.SUSPENDED.value
    if ready.get("status") == "True" and commit and moving and status.get("lastAppliedRevision") != commit:
        return Readiness(False, "Progressing", f"it has not applied {commit[:12]} yet")
    # for its dependents' Waiting message: the pointer to the whole error names this Unit's own field, not theirs
    return Readiness(ready.get("status") == "True", reason, message.removesuffix(_WHOLE))


_KEPT = ("lastAppliedRevision", "lastAttemptedRevision", "objects", "lastError", "lastHandledReconcileAt")
Condition = tuple[str, str, str]  # status, reason, message


def _conditions(outcome: PassOutcome, before: Mapping[Any, Mapping[str, Any]]) -> dict[str, Condition]:
    phase = outcome.phase
    message = (
        _summary(outcome.message) if phase in (Phase.FAILED, Phase.UNHEALTHY) else _bounded(visible(outcome.message))
    )
    not_stalled: Condition = ("False", Reason.SUCCEEDED.value, "")
    if phase is Phase.SUCCEEDED:
        applied = f"Applied revision {outcome.revision or '?'}"
        ready = (("True", Reason.PRUNE_HELD.value, _bounded(visible(f"{applied}; deletions held by the mass-prune "
                  f"brake: {outcome.brake}; release it with [gitopsguard: allow-mass-prune] in a commit message")))
                 if outcome.brake else ("True", Reason.SUCCEEDED.value, applied))  # fmt: skip
        return {"Ready": ready, "Reconciling": ("False", Reason.SUCCEEDED.value, ""), "Stalled": not_stalled}
    if phase is Phase.FAILED and outcome.retryable:
        retrying: Condition = ("True", Reason.RETRYING.value, f"retrying: {message}")
        return {"Ready": ("False", outcome.failure.value, message), "Reconciling": retrying, "Stalled": not_stalled}
    if phase is Phase.FAILED:
        stalled: Condition = ("True", outcome.failure.value, message)
        return {"Ready": ("False", outcome.failure.value, message),
                "Reconciling": ("False", outcome.failure.value, ""), "Stalled": stalled}  # fmt: skip
    if phase is Phase.UNHEALTHY:
        ready = ("False", Reason.HEALTH_CHECK_FAILED.value, message)
        return {"Ready": ready, "Reconciling": ("False", Reason.HEALTH_CHECK_FAILED.value, ""), "Stalled": not_stalled}
    if phase is Phase.WAITING:
        waiting: Condition = ("False", Reason.DEPENDENCY_NOT_READY.value, message)
        return {"Ready": waiting, "Reconciling": ("True", Reason.DEPENDENCY_NOT_READY.value, message),
                "Stalled": not_stalled}  # fmt: skip
    if phase is Phase.SUSPENDED:
        # Ready stays what it was: a suspended platform Unit still holds what it applied, and its dependents
        # need not stop (as Flux leaves a suspended Kustomization's status alone).
        was = str((before.get("Ready") or {}).get("status") or "Unknown")
        suspended = "suspended: changes nothing until resumed (gitopsguard resume unit)"
        return {"Ready": (was if was in ("True", "False") else "Unknown", Reason.SUSPENDED.value, suspended),
                "Reconciling": ("False", Reason.SUSPENDED.value, ""), "Stalled": not_stalled}  # fmt: skip
    progressing = "reconciliation in progress" + (f" for revision {outcome.revision}" if outcome.revision else "")
    return {"Ready": ("Unknown", Reason.PROGRESSING.value, progressing),
            "Reconciling": ("True", Reason.PROGRESSING.value, progressing), "Stalled": not_stalled}  # fmt: skip


def _stamped(kind: str, status: str, reason: str, message: str, generation: int,
             before: Mapping[str, Any] | None, now: datetime) -> dict[str, Any]:  # fmt: skip
    kept = before is not None and before.get("status") == status and isinstance(before.get("lastTransitionTime"), str)
    return {
        "type": kind, "status": status, "reason": reason, "observedGeneration": generation,
        "lastTransitionTime": before["lastTransitionTime"] if kept and before else f"{now:%Y-%m-%dT%H:%M:%SZ}",
    } | ({"message": message} if message else {})  # fmt: skip


def _summary(error: str) -> str:
    """A failure's first line, at most ``SUMMARY_CHARS``: the conditions' message, which `kubectl get units` shows
    in a column (a cell of many lines widens every row to its longest). The whole error is ``lastError``."""
    lines = error.strip().splitlines() or [""]
    first = visible(lines[0].strip())  # a tab: shown as an escape in a column
    if len(lines) == 1 and len(first) <= SUMMARY_CHARS:
        return first
    cut = first if len(first) <= SUMMARY_CHARS else first[: SUMMARY_CHARS - 3] + "..."
    return f"{cut}{_WHOLE}"


_WHOLE = " (the whole error: status.lastError)"


def ready_message(status: Mapping[str, Any]) -> str:
    """The Ready condition's message; a failure's whole (``lastError``) where the condition holds its summary."""
    conditions = status.get("conditions")
    ready = next((c for c in conditions if isinstance(c, Mapping) and c.get("type") == "Ready"), {}) if isinstance(
        conditions, list) else {}  # fmt: skip
    message = str(ready.get("message") or "")
    error = status.get("lastError")
    # a failure's summary: a Waiting message quoting a dependency's summary is not one (its lastError is kept from
    # an old failure of its own)
    failed = ready.get("status") == "False" and ready.get("reason") not in _NOT_FAILURES
    return str(error) if failed and message.endswith(_WHOLE) and isinstance(error, str) and error else message


_NOT_FAILURES = frozenset({Reason.DEPENDENCY_NOT_READY.value, Reason.SUSPENDED.value, Reason.PROGRESSING.value})


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 3] + "..."
