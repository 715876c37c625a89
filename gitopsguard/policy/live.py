"""What to do with one live workload, given its findings (pure; the clock and memory come from the caller).

Only top-level workloads are judged: a Pod its ReplicaSet would recreate is judged through its Deployment.
Deletion is never the answer for a workload Git manages (the fix is a pull request), for one already
terminating, or for one whose owner is something the scan does not manage.

Who manages a workload is never read from what a tenant can write alone: labels and ownerReferences are
claims. The scan checks them (``scan/trust.py``) and hands the result here as a ``Standing``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from gitopsguard.model import KubeObject
from gitopsguard.policy.model import Finding, LiveAction, Policy
from gitopsguard.policy.pods import WORKLOAD_KINDS


class Outcome(StrEnum):
    COMPLIANT = "compliant"
    REPORT = "report"  # report (and notify, where the policy says so)
    SCHEDULED = "scheduled"  # will be deleted at ``deadline`` unless it is fixed first
    DELETE = "delete"  # past its grace period: back up, then delete now
    HELD = "held"  # would be deleted, but must not be by the scan (``reason`` says why)
    TERMINATING = "terminating"  # already on its way out: nothing to do, nothing to announce


@dataclass(frozen=True)
class LiveVerdict:
    outcome: Outcome
    findings: tuple[Finding, ...]
    notify: bool
    deadline: datetime | None = None
    reason: str = ""

    @property
    def digest(self) -> str:
        """Changes exactly when the findings change: announcements are made once per digest."""
        text = "\n".join(sorted(f"{f.policy}|{f.code}|{f.path}|{f.message}" for f in self.findings))
        return hashlib.sha256(text.encode()).hexdigest()[:16] if self.findings else ""


@dataclass(frozen=True)
class Standing:
    """Who manages a workload, as far as the scan could verify it."""

    unit: str = ""  # the unit whose inventory lists it
    owner_kind: str = ""  # its controller, which exists with the uid its ownerReference names
    owner_name: str = ""
    unverified: str = ""  # why its claimed controller could not be checked now (held until it can be)
    claims: str = ""  # the unit its label names when that unit's inventory does not list it
    strays_from: str = ""  # its controller (kind/name), whose template would not produce its findings


def top_level(standing: Standing) -> bool:
    """Its verified controller, if any, is not a workload kind the scan judges instead."""
    return standing.owner_kind not in WORKLOAD_KINDS


def judge(
    body: KubeObject, findings: tuple[Finding, ...], policies: dict[str, Policy], first_seen: datetime | None,
    now: datetime, standing: Standing = Standing(),
) -> LiveVerdict:  # fmt: skip
    """The verdict on a top-level workload; ``first_seen`` is when it was first found non-compliant."""
    metadata = body.get("metadata") or {}
    if metadata.get("deletionTimestamp"):
        return LiveVerdict(Outcome.TERMINATING, findings, False)
    if not findings:
        return LiveVerdict(Outcome.COMPLIANT, (), False)
    actions = {policies[f.policy].live for f in findings if f.policy in policies}
    notify = bool(actions & {LiveAction.NOTIFY, LiveAction.DELETE})
    matched = [policies[f.policy] for f in findings if f.policy in policies]
    deleting = [p for p in matched if p.live is LiveAction.DELETE]
    if not deleting:
        return LiveVerdict(Outcome.REPORT, findings, notify)
    grace = min((p.grace for p in deleting), default=timedelta(0))
    deadline = (first_seen or now) + grace
    held = _held(standing)
    if held:
        return LiveVerdict(Outcome.HELD, findings, notify, deadline, held)
    claimed = _claimed(standing)
    if now < deadline:
        return LiveVerdict(Outcome.SCHEDULED, findings, notify, deadline, claimed)
    return LiveVerdict(Outcome.DELETE, findings, notify, deadline, claimed)


def _claimed(standing: Standing) -> str:
    """Why what it claims does not keep it from deletion, or ""."""
    if standing.claims:
        return f"labelled for unit {standing.claims}, whose inventory does not list it"
    if standing.strays_from:
        return f"names {standing.strays_from} as controller, which is not itself judged for these findings"
    return ""


def _held(standing: Standing) -> str:
    """Why the scan must not delete it, or "" when it may."""
    if standing.unit:
        return f"managed by Git (unit {standing.unit}): fix it with a pull request; the scan never deletes it"
    if standing.owner_kind:
        owner = f"{standing.owner_kind}/{standing.owner_name}"
        return f"owned by {owner}, which the scan does not manage: reported only"
    return standing.unverified
