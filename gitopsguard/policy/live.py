"""What to do with one live workload, given its findings (pure; the clock and memory come from the caller).

Only top-level workloads are judged: a Pod its ReplicaSet would recreate is judged through its Deployment.
Deletion is never the answer for a workload Git manages (the fix is a pull request), for one already
terminating, or for one whose owner is something the scan does not manage.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from gitopsguard.model import KubeObject
from gitopsguard.plan.prepare import UNIT_LABEL
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


def top_level(body: KubeObject) -> bool:
    """No controller among its owners is a workload kind the scan judges instead."""
    owners = (body.get("metadata") or {}).get("ownerReferences") or []
    return not any(o.get("controller") and o.get("kind") in WORKLOAD_KINDS for o in owners)


def judge(
    body: KubeObject, findings: tuple[Finding, ...], policies: dict[str, Policy], first_seen: datetime | None,
    now: datetime,
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
    unit = (metadata.get("labels") or {}).get(UNIT_LABEL)
    if unit:
        why = f"managed by Git (unit {unit}): fix it with a pull request; the scan never deletes it"
        return LiveVerdict(Outcome.HELD, findings, notify, deadline, why)
    owners = [o for o in metadata.get("ownerReferences") or [] if o.get("controller")]
    if owners:
        owner = owners[0]
        why = f"owned by {owner.get('kind')}/{owner.get('name')}, which the scan does not manage: reported only"
        return LiveVerdict(Outcome.HELD, findings, notify, deadline, why)
    if now < deadline:
        return LiveVerdict(Outcome.SCHEDULED, findings, notify, deadline)
    return LiveVerdict(Outcome.DELETE, findings, notify, deadline)
