"""The Events (and, for break glass, the audit record and the console line) a pass's result leaves on the
objects and the unit it concerns; both ``gitopsguard reconcile`` and the ``run`` loop mark a result so."""

from __future__ import annotations

import click

from gitopsguard.audit import AuditLog
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.events import EventRecorder
from gitopsguard.commands.review import mark
from gitopsguard.errors import ClusterError, GitOpsGuardError, UnreachableError
from gitopsguard.model import Action, Reason
from gitopsguard.reconcile import ReconcileResult
from gitopsguard.source.review import OFF_NOTE

_EVENTS = {  # reason -> (Event reason, warning); the Event's message is the change's own words
    Reason.DRIFTED: ("DriftRepaired", False),
    Reason.PRUNED: ("Pruned", False),
    Reason.UNMANAGED_DELETED: ("DeletedUnmanaged", True),
    Reason.ROLLED_BACK: ("RolledBack", False),
}


def mark_changes(events: EventRecorder, result: ReconcileResult) -> None:
    """`DriftRepaired`, `Pruned`, `DeletedUnmanaged` and `RolledBack` Events on the objects concerned, by
    reference (a deleted object is gone; the Event names it by its apiVersion, kind and name)."""
    for change in result.changes:
        event = _EVENTS.get(change.reason)
        if event is None or change.action is Action.SKIPPED or change.action is Action.FAILED:
            continue
        key = change.key
        body = {"apiVersion": change.api_version, "kind": key.kind,
                "metadata": {"name": key.name, "namespace": key.namespace or "default"}}  # fmt: skip
        why = f"left Git at {(result.revision or '')[:12]}" if change.reason is Reason.PRUNED else change.detail
        events.record(body, event[0], why, warning=event[1])


def mark_denied_objects(applier: Applier, events: EventRecorder, result: ReconcileResult) -> None:
    """A `PolicyViolation` Event on each live object a blocked revision would have changed."""
    if result.evaluation is None or not result.error:
        return
    for verdict in result.evaluation.blocked:
        try:
            live = applier.raw.get(applier.object_path(verdict.api_version, verdict.key), str(verdict.key))
        except UnreachableError:
            return
        except ClusterError:  # absent, or not ours to read: nothing to mark
            continue
        except GitOpsGuardError:
            return
        if live:
            codes = ", ".join(sorted({f"{f.code} ({f.policy})" for f in result.evaluation.blocking(verdict)}))
            revision = (result.revision or "")[:12]
            events.record(
                live,
                "PolicyViolation",
                f"revision {revision} was not applied: its version of this object is denied by {codes}",
            )


def mark_review(events: EventRecorder, result: ReconcileResult) -> None:
    """An Event on the unit when a head is refused as unreviewed, and when one is applied without review."""
    if result.unreviewed is not None:
        refused = result.unreviewed
        mark(events, result.unit, "UnreviewedRevision", f"revision {refused.head[:12]} not applied: commit "
             f"{refused.commit[:12]} ({refused.who}) was not reviewed: " + "; ".join(refused.problems[:5]))  # fmt: skip
    elif result.review is not None and result.review.note == OFF_NOTE:
        mark(events, result.unit, "UnreviewedRevisionApplied", f"revision {(result.revision or '')[:12]} applied "
             "without review (--review-mode off)")  # fmt: skip


def broke_glass(log: AuditLog, events: EventRecorder, result: ReconcileResult, reason: str) -> None:
    """Break glass is loud: the audit log, an Event on the unit, and the console."""
    revision = result.revision or ""
    log.append([("break-glass", result.unit, revision, f"unit/{result.unit}", f"review skipped: {reason}")])
    mark(events, result.unit, "BreakGlass", f"revision {revision[:12]} applied without review: {reason}")
    click.echo(f"BREAK GLASS: unit {result.unit} at {revision[:12]} was applied without review ({reason}); this "
               "is in the audit log and an Event. The next pass verifies from it again.", err=True)  # fmt: skip
