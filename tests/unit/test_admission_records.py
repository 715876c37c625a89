"""Who did it: denied, warned and break-glass requests are recorded with the requesting user in the audit
log and as an Event (none for a dry run); metrics count by namespace and policy without unbounded labels."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from gitopsguard.admission import Judgement, validate
from gitopsguard.admission.record import MAX_NAMESPACES, AdmissionMetrics, AdmissionRecorder
from gitopsguard.audit import AuditLog
from gitopsguard.commands.admission import notice_for
from gitopsguard.notify import Notice
from gitopsguard.policy import DenyLevel, parse_policies
from tests.admissionreview import BASELINE, MAGTAPE, hack_a_node_pod, request_of
from tests.unit.policy.workloads import as_deployment, compliant_spec

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
JUDGEMENT = Judgement(parse_policies({"p.yaml": BASELINE, "m.yaml": MAGTAPE}), DenyLevel.LOW, "abc123")


def _recorder(tmp_path: Path) -> tuple[AdmissionRecorder, AuditLog, list[tuple[Any, ...]], CollectorRegistry]:
    log, events, registry = AuditLog(tmp_path / "audit.jsonl"), [], CollectorRegistry()
    recorder = AdmissionRecorder(log, lambda body, reason, message: events.append((body, reason, message)),
                                 AdmissionMetrics(registry))  # fmt: skip
    return recorder, log, events, registry


def test_a_denied_request_is_recorded_with_its_user_in_the_audit_log_and_an_event(tmp_path: Path) -> None:
    recorder, log, events, registry = _recorder(tmp_path)
    verdict = validate(request_of(hack_a_node_pod("team"), username="mallory"), JUDGEMENT, now=NOW, namespace=None)
    recorder.observe(verdict, "validate", 0.002)
    recorder.record(verdict)
    records = {r.event: r for r in log.records()}
    assert records["admission-denied"].subject == "Pod/team/my-pod"
    assert records["admission-denied"].detail.startswith("by mallory (CREATE): [FAIL] HIGH - Host Namespaces")
    assert records["admission-denied"].revision == "abc123"
    assert "admission-warned" in records
    ((body, reason, message),) = events
    assert reason == "AdmissionDenied" and "by mallory denied: GG1102 (pod-security)" in message
    assert body["metadata"] == {"name": "my-pod", "namespace": "team"}
    assert registry.get_sample_value("gitopsguard_admission_denied_total",
                                     {"namespace": "team", "policy": "pod-security"}) == 1  # fmt: skip


def test_a_dry_run_is_audited_but_makes_no_event(tmp_path: Path) -> None:
    recorder, log, events, _ = _recorder(tmp_path)
    verdict = validate(request_of(hack_a_node_pod("team"), dry_run=True), JUDGEMENT, now=NOW, namespace=None)
    recorder.record(verdict)
    assert any("dry run" in r.detail for r in log.records()) and events == []


def test_a_break_glass_switch_is_audited_with_who_turned_it(tmp_path: Path) -> None:
    recorder, log, events, _ = _recorder(tmp_path)
    old = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "labels": {}}}
    new = {"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": "team", "labels": {"gitopsguard.io/admission": "disabled"}}}  # fmt: skip
    verdict = validate(request_of(new, operation="UPDATE", old=old, username="oncall"), JUDGEMENT, now=NOW,
                       namespace=new)  # fmt: skip
    assert verdict.break_glass == "on"
    recorder.observe(verdict, "validate", 0.001)
    recorder.record(verdict)
    (record,) = [r for r in log.records() if r.event == "admission-break-glass-on"]
    assert record.detail == "by oncall (UPDATE): admission turned off in this namespace"
    assert events[0][1] == "AdmissionBreakGlass"


def test_an_allowed_request_without_findings_is_counted_not_recorded(tmp_path: Path) -> None:
    recorder, log, events, registry = _recorder(tmp_path)
    spec = compliant_spec()
    verdict = validate(request_of(as_deployment(spec)), JUDGEMENT, now=NOW, namespace=None)
    recorder.observe(verdict, "validate", 0.001)
    assert recorder._queue.empty() and not log.path.exists() and events == []
    assert registry.get_sample_value("gitopsguard_admission_allowed_total",
                                     {"webhook": "validate", "namespace": "team"}) == 1  # fmt: skip


def test_namespace_labels_of_the_metrics_are_bounded(tmp_path: Path) -> None:
    metrics = AdmissionMetrics(CollectorRegistry())
    labels = {metrics._label(f"ns-{i}") for i in range(MAX_NAMESPACES + 50)}
    assert len(labels) == MAX_NAMESPACES + 1 and "other" in labels


def test_a_denied_request_retried_in_a_loop_makes_one_event_and_every_audit_record(tmp_path: Path) -> None:
    recorder, log, events, _ = _recorder(tmp_path)
    for _ in range(50):
        recorder.record(validate(request_of(hack_a_node_pod("team")), JUDGEMENT, now=NOW, namespace=None))
    assert len(events) == 1
    assert len([r for r in log.records() if r.event == "admission-denied"]) == 50


def test_a_denial_and_a_break_glass_switch_are_announced_to_the_namespaces_team_never_a_dry_run() -> None:
    announced: list[Notice] = []
    recorder = AdmissionRecorder(None, None, None, lambda verdict: announced.append(notice_for(verdict)))
    recorder.record(validate(request_of(hack_a_node_pod("team"), username="mallory"), JUDGEMENT, now=NOW,
                             namespace=None))  # fmt: skip
    recorder.record(validate(request_of(hack_a_node_pod("team"), dry_run=True), JUDGEMENT, now=NOW, namespace=None))
    recorder.record(validate(request_of(as_deployment(compliant_spec())), JUDGEMENT, now=NOW, namespace=None))
    old = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "labels": {}}}
    new = {"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": "team", "labels": {"gitopsguard.io/admission": "disabled"}}}  # fmt: skip
    recorder.record(validate(request_of(new, operation="UPDATE", old=old, username="oncall"), JUDGEMENT, now=NOW,
                             namespace=new))  # fmt: skip
    denied, glass = announced
    assert (denied.event, denied.namespace) == ("admission-denied", "team")
    assert denied.what == "mallory was refused CREATE of Pod/team/my-pod."
    assert "[FAIL] HIGH - Host Namespaces" in denied.why and "Request denied at admission" in denied.text()
    assert (glass.event, glass.namespace) == ("admission-break-glass", "team")
    assert glass.what == "oncall turned admission off in namespace team."


def test_a_followers_slow_read_of_an_older_revision_never_replaces_what_the_loop_offered_meanwhile() -> None:
    from gitopsguard.admission.applied import AppliedPolicies
    from gitopsguard.policy import PolicySet

    applied = AppliedPolicies(DenyLevel.LOW)
    began = applied.get()  # the follower starts reading revision "old" (nothing offered yet)
    applied.offer(JUDGEMENT.policies, "new")  # the loop applies "new" meanwhile
    applied.offer_read(PolicySet(), "old", began)
    judgement = applied.get()
    assert judgement is not None and judgement.revision == "new"
    applied.offer_read(PolicySet(), "newer", judgement)  # nothing offered meanwhile: taken
    newer = applied.get()
    assert newer is not None and newer.revision == "newer"


class CountingLog(AuditLog):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.appends = 0

    def append(self, entries: Any) -> Any:
        self.appends += 1
        return super().append(entries)


def test_a_burst_of_denials_is_written_in_one_append_not_one_per_request(tmp_path: Path) -> None:
    # An anchored log pays one conditional ConfigMap write per append: one per request would drop records.
    log = CountingLog(tmp_path / "audit.jsonl")
    recorder = AdmissionRecorder(log, None, AdmissionMetrics(CollectorRegistry()))
    for user in ("a", "b", "c"):
        verdict = validate(request_of(hack_a_node_pod("team"), username=user), JUDGEMENT, now=NOW, namespace=None)
        recorder.observe(verdict, "validate", 0.001)
    first, _ = recorder._queue.get_nowait()
    recorder.record(first, *recorder._waiting())
    assert log.appends == 1
    denied = [r.detail.split(" ")[1] for r in log.records() if r.event == "admission-denied"]
    assert denied == ["a", "b", "c"] and recorder._queue.empty()
