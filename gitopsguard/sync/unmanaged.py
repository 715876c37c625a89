"""The unmanaged sweep: workloads Git does not describe, in namespaces whose manifest opts in. Each is
reported, or backed up and deleted once its grace period is over (``plan.unmanaged`` judges; this acts)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from gitopsguard.backup import Backups, storage
from gitopsguard.cluster.apply import Applier
from gitopsguard.errors import GitOpsGuardError
from gitopsguard.model import Action, Change, Failure, ObjectKey, Reason
from gitopsguard.plan import unmanaged as stray
from gitopsguard.plan.prepare import Desired
from gitopsguard.scan.trust import managed_check

_WORKLOAD_VERSIONS = {kind: api_version for api_version, kind in stray.WORKLOAD_KINDS}


@dataclass(frozen=True)
class Swept:
    """What the sweep did to each unmanaged workload, when each one tracked was first seen, and whether any
    namespace of the revision opted in (then every pass must look)."""

    changes: tuple[Change, ...] = ()
    seen: dict[ObjectKey, datetime] = field(default_factory=dict)
    scans: bool = False


@dataclass(frozen=True)
class Holding:
    """How the unit may act on a workload due for deletion."""

    unit: str
    report_only: bool
    backup_dir: Path | Backups | None  # None: nowhere to back it up, so it is held


def sweep(
    holding: Holding, desired: Sequence[Desired], first_seen: dict[ObjectKey, datetime], applier: Applier,
    now: datetime,
) -> Swept:  # fmt: skip
    """Changes for unmanaged workloads in the namespaces of ``desired`` that opted in."""
    changes: list[Change] = []
    seen: dict[ObjectKey, datetime] = {}
    chosen = stray.policies(list(desired))
    managed = managed_check(applier, list(desired))  # labels and owners checked against the cluster, not believed
    for policy in chosen.values():
        live = applier.list_in_namespace(stray.WORKLOAD_KINDS, policy.namespace)
        for verdict in stray.judge(live, policy, first_seen, now, managed):
            change = _act_on(holding, verdict, applier, now)
            if change.action is not Action.DELETED and verdict.tracked:
                seen[verdict.key] = first_seen.get(verdict.key, now)
            changes.append(change)
    return Swept(tuple(changes), seen, bool(chosen))


def _act_on(holding: Holding, verdict: stray.Verdict, applier: Applier, now: datetime) -> Change:
    """Report an unmanaged workload, or back it up and delete it once its grace period is over."""
    key, api_version = verdict.key, _WORKLOAD_VERSIONS[verdict.key.kind]
    if not verdict.tracked:
        note = stray.untracked_note(key.namespace)
        return Change(key, api_version, Action.SKIPPED, Reason.UNMANAGED_UNTRACKED, note=note)
    if not verdict.delete:
        return Change(key, api_version, Action.SKIPPED, Reason.UNMANAGED, deadline=verdict.deadline)
    if holding.report_only:
        return Change(key, api_version, Action.SKIPPED, Reason.REPORT_ONLY, would=Action.DELETED,
                      deadline=verdict.deadline)  # fmt: skip
    if holding.backup_dir is None:
        return Change(key, api_version, Action.SKIPPED, Reason.UNMANAGED_HELD, deadline=verdict.deadline)
    try:
        why = "unmanaged: not in Git past its grace period"
        saved = storage(holding.backup_dir).under(holding.unit).save(key, verdict.body, now, reason=why)
    except GitOpsGuardError as error:  # this workload alone is held: the unit's pass goes on
        return Change(key, api_version, Action.FAILED, Reason.BACKUP_FAILED, error=Failure.of(error))
    refused = applier.delete(key, api_version)
    if refused is not None:
        return Change(key, api_version, Action.FAILED, Reason.DELETE_FAILED, error=Failure.of(refused))
    return Change(key, api_version, Action.DELETED, Reason.UNMANAGED_DELETED, backup=str(saved), restore=saved.restore)
