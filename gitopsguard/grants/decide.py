"""Deciding each grant's state (pure). The controller's clock decides; dates a user writes never do."""

from __future__ import annotations

from datetime import datetime, timedelta

from gitopsguard.grants.model import (
    DEFAULT_WINDOW,
    FUTURE_TOLERANCE,
    Approval,
    Decision,
    EscalationPolicy,
    Grant,
    Remembered,
    State,
)  # fmt: skip


def decide(
    grant: Grant, policies: dict[str, EscalationPolicy], approval: Approval | None, remembered: Remembered | None,
    now: datetime, window: timedelta = DEFAULT_WINDOW,
) -> Decision:  # fmt: skip
    """The grant's state now. ``approval`` may be None for a grant already ACTIVE or EXPIRED: those are
    settled by the clock alone. A grant once REVOKED or EXPIRED never becomes ACTIVE again."""
    if remembered is not None and remembered.state in (State.ACTIVE, State.EXPIRED):
        expires = remembered.expires
        state = State.EXPIRED if expires is None or now >= expires else remembered.state
        problem = _no_longer_holds(grant, approval, remembered) if approval and state is State.ACTIVE else ""
        if problem:
            return Decision(grant, State.REVOKED, problem, remembered.approver, remembered.start, expires)
        return Decision(grant, state, remembered.reason, remembered.approver, remembered.start, expires,
                        remembered.merge)  # fmt: skip
    if remembered is not None and remembered.state is State.REVOKED:
        # Revoked stays revoked: the same request (the same blob) is not approved twice, however it comes back.
        return Decision(grant, State.REVOKED, remembered.reason or "revoked; ask again with a new request",
                        remembered.approver, remembered.start, remembered.expires)  # fmt: skip
    policy = policies.get(grant.policy)
    if policy is None:
        return _denied(grant, f"no escalation policy named {grant.policy!r} in access/policies/")
    if problem := _outside_policy(grant, policy):
        return _denied(grant, problem)
    if approval is None:
        return Decision(grant, State.PENDING, "not approved yet")
    if approval.problem:
        return _denied(grant, approval.problem)
    return _approved(grant, policy, approval, remembered, now, window)


def _no_longer_holds(grant: Grant, approval: Approval, remembered: Remembered) -> str:
    """Why the evidence an ACTIVE grant was activated on is gone; "" while it holds. Only that evidence counts:
    the approving merge must still be where the blob's run on the branch starts (a deletion since, however the
    bytes came back, moves that start), at the same time, and every approver it was activated on must still
    approve (their own latest review decides). An approval added later, by anyone, changes nothing: otherwise
    whoever can review a merged pull request could revoke someone else's grant."""
    why = approval.problem or _what_changed(approval, remembered)
    if why:
        return f"{grant.path}: revoked, its approval no longer holds ({why}); ask again with a new request"
    return ""


def _what_changed(approval: Approval, remembered: Remembered) -> str:
    if approval.merge != remembered.merge:
        return (
            "its file was removed or changed since it was approved: the merge that brought it is no longer "
            "where its content arrived on the branch"
        )
    if approval.approved_at != remembered.start:
        return "the approving merge's time changed since it was activated"
    withdrawn = sorted(_activating_approvers(remembered) - {a.user for a in approval.approvers})
    if withdrawn:
        return f"{', '.join(withdrawn)} no longer approves it"
    return ""


def _activating_approvers(remembered: Remembered) -> frozenset[str]:
    """The approvers the grant was activated on, as remembered (joined by ", "). Exact: the names a trust file
    may hold have no comma or space, and GitHub logins neither. An empty name never matches anyone."""
    return frozenset(remembered.approver.split(", ")) if remembered.approver else frozenset({""})


def _denied(grant: Grant, reason: str) -> Decision:
    return Decision(grant, State.DENIED, reason)


def _outside_policy(grant: Grant, policy: EscalationPolicy) -> str:
    if policy.reason_required and not grant.reason.strip():
        return f"policy {policy.name} requires a reason"
    for rule in policy.roles:
        if (rule.kind, rule.name) != (grant.role_kind, grant.role):
            continue
        if grant.namespace and grant.namespace in rule.namespaces:
            return ""
        if not grant.namespace and rule.cluster_wide:
            return ""
    return f"policy {policy.name} does not allow {grant.role_kind} {grant.role} {grant.scope}"


def _people_problem(grant: Grant, policy: EscalationPolicy, approval: Approval) -> str:
    """Why the people behind the request and the approval do not qualify; "" when they do."""
    requester = approval.requester
    if requester is None:
        return "the request is not signed by anyone the trust configuration knows"
    if grant.subject_kind == "User" and requester.user != grant.subject:
        return f"requested by {requester.user}, not by the subject {grant.subject}"
    if grant.subject_kind == "Group" and grant.subject not in requester.groups:
        return f"requested by {requester.user}, who is not in the group {grant.subject}"
    if (policy.requesters.users or policy.requesters.groups) and not policy.requesters.include(
        requester.user, requester.groups
    ):
        return f"{requester.user} may not request under policy {policy.name}"
    if any(a.user == requester.user for a in approval.approvers):
        return f"{requester.user} approved their own grant"
    # An approver who belongs to the subject gets the access too: for approval, they are the requester.
    for approver in approval.approvers:
        if grant.subject_kind == "User" and approver.user == grant.subject:
            return f"{approver.user} approved their own grant"
        if grant.subject_kind == "Group" and grant.subject in approver.groups:
            return (f"{approver.user} is in the group {grant.subject} the grant is for: approving it is approving "
                    "for themselves")  # fmt: skip
    strangers = [a.user for a in approval.approvers if not policy.approvers.include(a.user, a.groups)]
    if strangers:
        return f"approved by {', '.join(strangers)}, who may not approve under policy {policy.name}"
    return ""


def _approved(
    grant: Grant, policy: EscalationPolicy, approval: Approval, remembered: Remembered | None, now: datetime,
    window: timedelta,
) -> Decision:  # fmt: skip
    if problem := _people_problem(grant, policy, approval):
        return _denied(grant, problem)
    start = approval.approved_at
    if start is None:
        return Decision(grant, State.PENDING, f"{len(approval.approvers)} of {policy.approvals} approvals")
    if len(approval.approvers) < policy.approvals:  # merged anyway: an edit after review, or too few reviews
        return _denied(grant, f"merged with {len(approval.approvers)} of {policy.approvals} approvals on its final "
                              "commit (an edit after approval needs a new approval)")  # fmt: skip
    if start > now + FUTURE_TOLERANCE:
        return _denied(grant, f"the approval time {start:%Y-%m-%dT%H:%M:%SZ} is in the future")
    first_seen = remembered.first_seen if remembered is not None else now
    if first_seen - start > window:
        return _denied(grant, f"approved at {start:%Y-%m-%dT%H:%M:%SZ}, more than {window} before it was first "
                              "seen; old access is not brought back (request it again)")  # fmt: skip
    expires = start + min(grant.duration, policy.max_duration)
    approver = ", ".join(a.user for a in approval.approvers)
    state = State.EXPIRED if now >= expires else State.ACTIVE
    return Decision(grant, state, "", approver, start, expires, approval.merge)
