"""``gitopsguard get units``, ``suspend unit``, ``resume unit`` and ``reconcile unit``: Units as people
control them, through the API server (``cluster/units.py``), never by reaching into a controller.

``reconcile unit`` asks, as ``flux reconcile`` does: it sets ``reconcile.gitopsguard.io/requestedAt`` to a
value of its own and waits until the controller has copied that value into
``status.lastHandledReconcileAt``, which it does once the pass it started for it has ended. The controller
that serves Units does that (the Units loop); a cluster without one answers nothing, and the command says so
when its timeout runs out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from gitopsguard.cluster.units import LiveUnit, UnitStore
from gitopsguard.errors import (
    GitOpsGuardError,
    PolicyBlockedError,
    PolicyError,
    RenderError,
    SourceError,
    UnitError,
)
from gitopsguard.model import Action, Reason
from gitopsguard.units import PassOutcome, Phase, ready_message
from gitopsguard.units import Reason as Condition
from gitopsguard.visible import visible

if TYPE_CHECKING:
    from gitopsguard.reconcile import ReconcileResult

_STATUS_CHARS = 80  # a table row stays one line; `kubectl describe` shows the whole message


@dataclass(frozen=True)
class Served:
    """What a served reconcile request came to: the Unit's Ready condition afterwards."""

    ready: str  # "True", "False" or "Unknown"
    reason: str
    message: str


def table(units: tuple[LiveUnit, ...], now: datetime, *, all_namespaces: bool) -> str:
    """Units as `kubectl get` shows them: one padded row each, hostile text escaped and cut."""
    header = [*(["NAMESPACE"] if all_namespaces else []), "NAME", "READY", "STATUS", "REVISION", "OBJECTS",
              "SUSPENDED", "AGE"]  # fmt: skip
    rows = [header]
    for unit in sorted(units, key=lambda u: (u.namespace, u.name)):
        ready = _ready(unit.status)
        spec = unit.body.get("spec") if isinstance(unit.body.get("spec"), Mapping) else {}
        row = [unit.name, ready.get("status", "Unknown"), _cut(str(ready.get("message") or ready.get("reason") or "-")),
               _cut(str(unit.status.get("lastAppliedRevision") or "-"), 40), str(unit.status.get("objects", "-")),
               str((spec or {}).get("suspend") is True).lower(), _age(unit.body, now)]  # fmt: skip
        rows.append([unit.namespace, *row] if all_namespaces else row)
    widths = [max(len(visible(str(row[i]))) for row in rows) for i in range(len(header))]
    return "\n".join("   ".join(visible(str(c)).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows)  # fmt: skip


def set_suspended(store: UnitStore, namespace: str, name: str, suspend: bool) -> str:
    """Suspend or resume a Unit, with an Event on it saying so; the line to print."""
    unit = store.set_suspend(namespace, name, suspend)
    verb = "suspended" if suspend else "resumed"
    store.record_event(unit, "Suspended" if suspend else "Resumed", f"{verb} with `gitopsguard {verb[:-1]} unit`")
    return f"{unit.subject} {verb}"


def reconcile_unit(
    store: UnitStore, namespace: str, name: str, timeout: timedelta, *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC), sleep: Callable[[float], None] = time.sleep,
    every: float = 1.0,
) -> Served:  # fmt: skip
    """Ask the controller to reconcile the Unit now and wait until it has served that request. UnitError when
    the Unit is suspended, or when nothing served the request within ``timeout``."""
    unit = store.get(namespace, name)
    if (unit.body.get("spec") or {}).get("suspend") is True:
        raise UnitError(f"{unit.subject}: suspended, so no controller reconciles it; resume it first: "
                        f"gitopsguard resume unit {name} -n {namespace}")  # fmt: skip
    requested = f"{now():%Y-%m-%dT%H:%M:%S.%fZ}"  # a value of our own: another request's answer is not ours
    store.request_reconcile(namespace, name, requested)
    deadline = time.monotonic() + timeout.total_seconds()
    while True:
        unit = store.get(namespace, name)
        if unit.status.get("lastHandledReconcileAt") == requested:
            ready = _ready(unit.status)
            return Served(str(ready.get("status") or "Unknown"), str(ready.get("reason") or ""),
                          ready_message(unit.status))  # fmt: skip
        if time.monotonic() >= deadline:
            raise UnitError(_unserved(unit, requested, timeout))
        sleep(every)


def _unserved(unit: LiveUnit, requested: str, timeout: timedelta) -> str:
    handled = unit.status.get("lastHandledReconcileAt")
    last = f"the last request it served was {visible(str(handled))[:64]}" if handled else "it never served one"
    return (f"{unit.subject}: no controller served the reconcile request {requested} within "
            f"{int(timeout.total_seconds())}s ({last}). Is gitopsguard running with Units in this cluster? Check "
            "its logs and `kubectl get units -A`; the request stays set, so a controller serves it when it "
            "comes")  # fmt: skip


def _ready(status: Mapping[str, Any]) -> Mapping[str, Any]:
    conditions = status.get("conditions")
    found = (c for c in conditions if isinstance(c, Mapping) and c.get("type") == "Ready") if isinstance(
        conditions, list) else iter(())  # fmt: skip
    return next(found, {})


def _cut(text: str, chars: int = _STATUS_CHARS) -> str:
    """At most ``chars`` characters of ``text`` (the table escapes what it prints, once)."""
    return text if len(text) <= chars else text[: chars - 3] + "..."


def _age(body: Mapping[str, Any], now: datetime) -> str:
    """kubectl's short age: 45s, 12m, 5h, 3d."""
    created = (body.get("metadata") or {}).get("creationTimestamp")
    try:
        seconds = int((now - datetime.strptime(str(created), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)).total_seconds())
    except ValueError:
        return "-"
    for suffix, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if suffix != "m" else 1):
            return f"{seconds // size}{suffix}"
    return f"{max(seconds, 0)}s"


def print_served(subject: str, served: Served) -> int:
    """Print what the served request came to; 0 when the Unit is Ready, 1 otherwise."""
    click.echo(f"{subject}: Ready {served.ready}" + (f" ({served.reason})" if served.reason else "")
               + (f": {visible(served.message)}" if served.message else ""))  # fmt: skip
    return 0 if served.ready == "True" else 1


# What a pass's typed failure means for the Unit's conditions, most specific first.
_FAILURES: tuple[tuple[type[GitOpsGuardError], Condition], ...] = (
    (PolicyBlockedError, Condition.POLICY_DENIED),
    (RenderError, Condition.BUILD_FAILED),
    (PolicyError, Condition.BUILD_FAILED),  # the revision's policies/ do not load: it cannot be judged
    (SourceError, Condition.ARTIFACT_FAILED),
    (UnitError, Condition.INVALID_SPEC),
)
_OWNED = frozenset({Reason.IN_SYNC, Reason.APPLIED, Reason.DRIFTED})


def outcome_of(result: ReconcileResult, generation: int, handled: str | None = None) -> PassOutcome:
    """A recipe's pass (``reconcile.ReconcileResult``) in the terms of a Unit's status; ``handled`` is the
    reconcile request the pass served. The one translation between the recipe and ``units/`` (which may not
    import it)."""
    if result.error is None:
        owned = sum(1 for c in result.changes if c.reason in _OWNED and c.action is not Action.FAILED)
        return PassOutcome(Phase.SUCCEEDED, generation, result.revision, objects=owned,
                           brake=result.brake or "", handled=handled)  # fmt: skip
    failure = result.failure
    reason = Condition.UNREVIEWED if result.unreviewed is not None else next(
        (condition for kind, condition in _FAILURES if isinstance(failure, kind)), Condition.FAILED)  # fmt: skip
    return PassOutcome(Phase.FAILED, generation, result.revision, failure=reason,
                       retryable=bool(failure is not None and failure.retryable), message=result.error,
                       handled=handled)  # fmt: skip
