"""Values that flow between the stages. Raw Kubernetes bodies stay plain dicts."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from gitopsguard.errors import GitOpsGuardError

KubeObject = dict[str, Any]
# The label on every object a unit applies: how prune, the live cache and the scan know what a unit owns.
UNIT_LABEL = "gitopsguard.io/unit"
# The apiVersion of gitopsguard's own files: policies, policy exceptions, grants and escalation policies.
API_VERSION = "gitopsguard.io/v1alpha1"
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: object) -> timedelta | None:
    """``90s``, ``30m``, ``2h``, ``1d`` as a timedelta; None when the text is not such a duration."""
    match = re.fullmatch(r"(\d+)([smhd])", str(text or "").strip())
    return timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]]) if match else None


@dataclass(frozen=True, order=True)
class ObjectKey:
    """What identifies one object in a cluster: API group, kind, namespace ("" when none given), name."""

    group: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> ObjectKey:
        api_version = str(body.get("apiVersion", ""))
        group = api_version.rpartition("/")[0]
        metadata = body.get("metadata") or {}
        return cls(group, str(body.get("kind", "")), str(metadata.get("namespace") or ""), str(metadata.get("name")))

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"


@dataclass(frozen=True, eq=False)
class Manifest:
    """One desired object and where it came from (a file, or a kustomization directory)."""

    key: ObjectKey
    body: KubeObject
    origin: str


class Action(StrEnum):
    CREATED = "created"
    CONFIGURED = "configured"
    UNCHANGED = "unchanged"
    DELETED = "deleted"
    SKIPPED = "skipped"
    FAILED = "failed"


class Reason(StrEnum):
    """Why a change happened, or why it did not: the closed set consumers branch on (never on text)."""

    IN_SYNC = "in-sync"  # unchanged: the cluster holds what Git says
    APPLIED = "applied"  # created or configured because Git added or changed it
    DRIFTED = "drifted"  # put back after a change (configured) or a deletion (created) outside Git
    REPORT_ONLY = "report-only"  # not written: the unit only reports; ``would`` says what it would have done
    PRUNED = "pruned"  # deleted: it left Git
    NOT_OURS = "not-ours"  # not pruned: it no longer carries this unit's label
    PRUNE_DISABLED = "prune-disabled"  # not pruned: marked gitopsguard.io/prune: disabled
    BRAKE = "brake"  # not pruned: the mass-prune brake engaged (``note`` says why)
    DRY_RUN_REFUSED = "dry-run-refused"  # the revision is refused: the server refused this object's dry run
    APPLY_REFUSED = "apply-refused"  # the revision failed: the server refused this object after its dry run
    DELETE_FAILED = "delete-failed"  # the API server refused a delete (``error``)
    UNMANAGED = "unmanaged"  # a workload Git does not describe, reported (``deadline``: when it goes)
    UNMANAGED_UNTRACKED = "unmanaged-untracked"  # reported only: its namespace holds too many to track
    UNMANAGED_HELD = "unmanaged-held"  # due for deletion, held: no backup directory is configured
    UNMANAGED_DELETED = "unmanaged-deleted"  # deleted past its grace period, after a backup (``backup``)
    BACKUP_FAILED = "backup-failed"  # due for deletion, held: its backup could not be written (``error``)
    ROLLED_BACK = "rolled-back"  # deleted: this pass created it, and its revision then failed
    ROLLBACK_LEFT_ALONE = "rollback-left-alone"  # not rolled back: replaced, relabelled or marked since
    ROLLBACK_UNREADABLE = "rollback-unreadable"  # not rolled back: it could not be read again (``error``)
    ROLLBACK_FAILED = "rollback-failed"  # not rolled back: the delete was refused (``error``)


@dataclass(frozen=True)
class Cause:
    """One of the server's field-level reasons for refusing an object (a Status's ``details.causes``)."""

    reason: str
    message: str
    field: str


@dataclass(frozen=True)
class Failure:
    """An error as data: which kind (the ``errors.py`` class), its message (the object first), the server's
    causes, and whether the same request may succeed later unchanged."""

    kind: str
    message: str
    causes: tuple[Cause, ...] = ()
    retryable: bool = False

    @classmethod
    def of(cls, error: GitOpsGuardError) -> Failure:
        causes = tuple(
            Cause(str(c.get("reason") or ""), str(c.get("message") or ""), str(c.get("field") or ""))
            for c in getattr(error, "causes", None) or ()
            if isinstance(c, Mapping)
        )
        return cls(type(error).__name__, str(error), causes, bool(getattr(error, "retryable", False)))

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Drift:
    """A change made outside Git that a pass found: a deletion, or a change and who made it."""

    deleted: bool
    writer: str = ""  # the field manager that wrote desired state, from managedFields (a claim)
    user: str = ""  # the authenticated user the API server's audit log names, when it does

    def __str__(self) -> str:
        cause = "it was deleted outside Git" if self.deleted else f"it was changed by {self.writer}"
        return cause + (f"; by {self.user}" if self.user else "")


@dataclass(frozen=True)
class Change:
    """What happened (or would happen) to one object, and why, as data; ``detail`` is derived for people."""

    key: ObjectKey
    api_version: str  # as Git or the cluster gave it: never guessed from the group
    action: Action
    reason: Reason
    error: Failure | None = None
    drift: Drift | None = None
    would: Action | None = None  # REPORT_ONLY: the action the pass would have taken
    deadline: datetime | None = None  # UNMANAGED (and held ones): when it goes, or went due (UTC)
    backup: str = ""  # UNMANAGED_DELETED: where its manifest was saved (a file, or a commit of a backup repository)
    restore: str = ""  # UNMANAGED_DELETED: the command that brings it back
    note: str = ""  # a pure stage's own words where the reason needs them (the brake's, the untracked cap's)

    @property
    def repaired_drift(self) -> bool:
        """Whether this pass put back a change made outside Git (not merely found one)."""
        return self.reason is Reason.DRIFTED

    @property
    def detail(self) -> str:
        """The change's reason in words, for people (audit records, Events, the console): never parsed."""
        return _DESCRIBE[self.reason](self)

    def __str__(self) -> str:
        detail = self.detail
        return f"{self.key} {self.action.value}" + (f": {detail}" if detail else "")


def _when(change: Change) -> str:
    return f"{change.deadline:%Y-%m-%d %H:%M:%S}Z" if change.deadline else "?"


def _reported(change: Change) -> str:
    if change.deadline is not None:  # an unmanaged workload due for deletion, held by report-only
        return f"unmanaged: not in Git; due for deletion since {_when(change)}, held: report-only"
    would = change.would.value if change.would else "?"
    return f"report-only: would be {would}" + (f"; drift repaired: {change.drift}" if change.drift else "")


def _unmanaged(change: Change) -> str:
    if change.deadline is None:
        return "unmanaged: not in Git (reported only)"
    return f"unmanaged: not in Git; deleted at {_when(change)} unless added to Git"


def _error(change: Change) -> str:
    return str(change.error or "")


def _rollback_failed(what: str) -> Callable[[Change], str]:
    return lambda c: f"{c.key}: rollback: {what} ({c.error}); delete it by hand if it is not wanted"


def _rollback_unreadable(change: Change) -> str:
    return (f"{change.key}: rollback: cannot be read again ({change.error}); left as it is, delete it by hand if "
            "it is not wanted")  # fmt: skip


_DESCRIBE: dict[Reason, Callable[[Change], str]] = {
    Reason.IN_SYNC: lambda c: "",
    Reason.APPLIED: lambda c: "",
    Reason.DRIFTED: lambda c: f"drift repaired: {c.drift}",
    Reason.REPORT_ONLY: _reported,
    Reason.PRUNED: lambda c: "",
    Reason.NOT_OURS: lambda c: "no longer carries this unit's label (adopted elsewhere or edited); not ours to delete",
    Reason.PRUNE_DISABLED: lambda c: "marked gitopsguard.io/prune: disabled",
    Reason.BRAKE: lambda c: f"mass-prune brake: {c.note}",
    Reason.DRY_RUN_REFUSED: _error,
    Reason.APPLY_REFUSED: _error,
    Reason.DELETE_FAILED: _error,
    Reason.UNMANAGED: _unmanaged,
    Reason.UNMANAGED_UNTRACKED: lambda c: c.note,
    Reason.UNMANAGED_HELD: lambda c: (
        f"unmanaged: not in Git; due for deletion since {_when(c)}, held: no backup directory is configured"
    ),
    Reason.UNMANAGED_DELETED: lambda c: f"unmanaged past its grace period; backup: {c.backup}; restore: {c.restore}",
    Reason.BACKUP_FAILED: _error,
    Reason.ROLLED_BACK: lambda c: "rolled back: created by this pass, whose revision then failed",
    Reason.ROLLBACK_LEFT_ALONE: lambda c: (
        "rollback: no longer the object this pass created, or no longer ours; left alone"
    ),
    Reason.ROLLBACK_UNREADABLE: _rollback_unreadable,
    Reason.ROLLBACK_FAILED: _rollback_failed("delete failed"),
}
