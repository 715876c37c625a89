"""What the live scan decides for one workload (pure): report, schedule, delete, or hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gitopsguard.policy import parse_policies
from gitopsguard.policy.live import Outcome, Standing, judge, top_level
from gitopsguard.policy.model import Finding, Severity

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
POLICIES = {
    p.name: p
    for p in parse_policies(
        {
            "p.yaml": """
apiVersion: gitopsguard.io/v1alpha1
kind: Policy
metadata: {name: remove}
spec:
  builtin: {name: magtape}
  live: {action: delete, gracePeriod: 10m}
---
apiVersion: gitopsguard.io/v1alpha1
kind: Policy
metadata: {name: tell}
spec:
  builtin: {name: magtape}
  live: {action: notify}
"""
        }
    ).policies
}


def finding(policy: str) -> Finding:
    return Finding(policy, "MT2001", "Privileged Pod", "", Severity.HIGH, "privileged", "spec", "", True)


def workload(**metadata: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "n", **metadata}}


def test_a_compliant_workload_needs_nothing() -> None:
    assert judge(workload(), (), POLICIES, None, NOW).outcome is Outcome.COMPLIANT


def test_a_notify_policy_reports_and_notifies_but_never_deletes() -> None:
    verdict = judge(workload(), (finding("tell"),), POLICIES, NOW - timedelta(days=9), NOW)
    assert (verdict.outcome, verdict.notify) == (Outcome.REPORT, True)


def test_deletion_is_scheduled_from_first_sight_and_due_after_the_grace_period() -> None:
    first = NOW - timedelta(minutes=9, seconds=59)
    scheduled = judge(workload(), (finding("remove"),), POLICIES, first, NOW)
    assert scheduled.outcome is Outcome.SCHEDULED and scheduled.deadline == first + timedelta(minutes=10)
    due = judge(workload(), (finding("remove"),), POLICIES, first, NOW + timedelta(seconds=1))
    assert due.outcome is Outcome.DELETE


def test_a_git_managed_workload_is_held_and_the_reason_says_to_open_a_pull_request() -> None:
    body = workload(labels={"gitopsguard.io/unit": "apps"})
    verdict = judge(body, (finding("remove"),), POLICIES, NOW - timedelta(days=1), NOW, Standing(unit="apps"))
    assert verdict.outcome is Outcome.HELD and "pull request" in verdict.reason


def test_a_unit_label_alone_holds_nothing_and_the_reason_names_the_claim() -> None:
    body = workload(labels={"gitopsguard.io/unit": "apps"})
    verdict = judge(body, (finding("remove"),), POLICIES, NOW - timedelta(days=1), NOW, Standing(claims="apps"))
    assert verdict.outcome is Outcome.DELETE and "apps, whose inventory does not list it" in verdict.reason


def test_an_owner_that_could_not_be_checked_holds_the_workload_and_says_why() -> None:
    standing = Standing(unverified="its controller ReplicaSet/r could not be checked")
    verdict = judge(workload(), (finding("remove"),), POLICIES, NOW - timedelta(days=1), NOW, standing)
    assert verdict.outcome is Outcome.HELD and "could not be checked" in verdict.reason


def test_a_terminating_workload_is_left_alone() -> None:
    body = workload(deletionTimestamp="2026-11-24T11:00:00Z")
    assert judge(body, (finding("remove"),), POLICIES, None, NOW).outcome is Outcome.TERMINATING


def test_a_pod_of_a_verified_replicaset_is_judged_through_its_owner_but_a_pod_of_an_operator_is_held() -> None:
    assert not top_level(Standing(owner_kind="ReplicaSet", owner_name="r"))
    assert top_level(Standing()) and top_level(Standing(owner_kind="Database", owner_name="db"))
    operator = {"kind": "Pod", "metadata": {"name": "p"}}
    verdict = judge(operator, (finding("remove"),), POLICIES, NOW - timedelta(days=1), NOW,
                    Standing(owner_kind="Database", owner_name="db"))  # fmt: skip
    assert verdict.outcome is Outcome.HELD and "Database/db" in verdict.reason


def test_an_owner_reference_alone_holds_nothing() -> None:
    forged = [{"kind": "Database", "name": "db", "controller": True}]
    body = {"kind": "Pod", "metadata": {"name": "p", "ownerReferences": forged}}
    assert judge(body, (finding("remove"),), POLICIES, NOW - timedelta(days=1), NOW).outcome is Outcome.DELETE


def test_the_announcement_digest_changes_only_when_findings_change() -> None:
    a = judge(workload(), (finding("tell"),), POLICIES, None, NOW)
    b = judge(workload(resourceVersion="9"), (finding("tell"),), POLICIES, None, NOW + timedelta(hours=1))
    c = judge(workload(), (finding("tell"), finding("remove")), POLICIES, None, NOW)
    assert a.digest == b.digest != c.digest
