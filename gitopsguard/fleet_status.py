"""A Unit's status and Events as the Units loop (``fleet.py``) writes them.

A status is written only when it changes, so the events our own writes cause end after one quiet round;
a reconcile request (``reconcile.gitopsguard.io/requestedAt``) is answered by whatever the round made of the
Unit (passed, suspended, waiting, refused), its value copied into ``status.lastHandledReconcileAt``, so that
``gitopsguard reconcile unit`` never waits in vain on a Unit the controller serves. An Event goes on the Unit
when its Ready condition moves, or when a pass changed objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from gitopsguard.cluster.units import REQUESTED_AT, LiveUnit, UnitStore
from gitopsguard.errors import ConflictError, NotFoundError
from gitopsguard.model import Action
from gitopsguard.reconcile import ReconcileResult
from gitopsguard.units import PassOutcome, Readiness, readiness_of, request_answered, status_of


@dataclass(frozen=True)
class Served:
    """A Unit after its status was written (or found already current)."""

    unit: LiveUnit
    readiness: Readiness


class StatusWriter:
    def __init__(self, units: UnitStore) -> None:
        self._units = units

    def write(self, live: LiveUnit, outcome: PassOutcome, *, result: ReconcileResult | None = None) -> Served:
        """Move ``live``'s status on by ``outcome``, answering its pending reconcile request. A write that lost
        a race (the Unit moved meanwhile) is computed again once from the Unit as it is now."""
        try:
            return self._write(live, outcome, result)
        except ConflictError:  # a request that came meanwhile is not this pass's to answer
            return self._write(answering(self._units.get(live.namespace, live.name), live.requested_at), outcome,
                               result)  # fmt: skip
        except NotFoundError:  # deleted meanwhile: the root's next pass says whether it is still declared
            return Served(live, Readiness(False, "NotFound", f"{live.subject} was deleted"))

    def _write(self, live: LiveUnit, outcome: PassOutcome, result: ReconcileResult | None) -> Served:
        if live.requested_at is not None and not request_answered(live.requested_at, live.status):
            outcome = replace(outcome, handled=live.requested_at)
        status = status_of(outcome, live.status, datetime.now(UTC))
        if _unchanged(live.status, status):
            return Served(live, readiness_of(live.status, live.generation))
        written = self._units.write_status(live, status)
        self._event(live, written, result)
        return Served(written, readiness_of(written.status, written.generation))

    def _event(self, before: LiveUnit, after: LiveUnit, result: ReconcileResult | None) -> None:
        ready, was = _ready(after.status), _ready(before.status)
        acted = result is not None and any(c.action is not Action.UNCHANGED for c in result.changes)
        moved = (ready.get("status"), ready.get("reason"), ready.get("message")) != (
            was.get("status"), was.get("reason"), was.get("message"))  # fmt: skip
        if not (moved or acted):
            return
        message = str(ready.get("message") or ready.get("reason") or "")
        if acted and result is not None:
            changed = sum(1 for c in result.changes if c.action is not Action.UNCHANGED)
            message = f"{message} ({changed} objects changed)"
        self._units.record_event(after, str(ready.get("reason") or "Reconciled"), message,
                                 warning=ready.get("status") == "False")  # fmt: skip


def answering(live: LiveUnit, request: str | None) -> LiveUnit:
    """``live`` holding ``request`` (the reconcile request the round saw before it fetched, or none) instead of
    a later one: a request answered by a pass on a revision fetched before it came would report that old
    revision as the one it asked for. The later request stays on the object; the next round fetches for it."""
    if live.requested_at == request:
        return live
    metadata = live.body.get("metadata") or {}
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items() if k != REQUESTED_AT}
    if request is not None:
        annotations[REQUESTED_AT] = request
    return replace(live, body={**live.body, "metadata": {**metadata, "annotations": annotations}})


def _unchanged(before: Mapping[str, Any], patch: Mapping[str, Any]) -> bool:
    """Whether merging ``patch`` (None removes a field) into ``before`` leaves it as it is."""
    merged = {**before, **patch}
    return {k: v for k, v in merged.items() if v is not None} == dict(before)


def _ready(status: Mapping[str, Any]) -> Mapping[str, Any]:
    conditions = status.get("conditions")
    found = (c for c in conditions if isinstance(c, Mapping) and c.get("type") == "Ready") if isinstance(
        conditions, list) else iter(())  # fmt: skip
    return next(found, {})
