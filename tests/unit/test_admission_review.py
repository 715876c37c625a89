"""The admission decision: the same verdict as the gate, MagTape-style denial lines, bounded warnings, and
the gate's mutations as a JSON Patch."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from gitopsguard.admission import Judgement, mutate_request, response, validate
from gitopsguard.admission.review import PodSecurityFindings
from gitopsguard.model import KubeObject, Manifest, ObjectKey
from gitopsguard.policy import DenyLevel, Finding, Severity, evaluate, parse_policies
from tests.admissionreview import BASELINE, MAGTAPE, TEAM_LABEL, TTL, exception, hack_a_node_pod, request_of
from tests.unit.policy.workloads import as_deployment, as_pod, compliant_spec

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
POLICIES = parse_policies({"policies/pss.yaml": BASELINE, "policies/magtape.yaml": MAGTAPE,
                           "policies/ttl.yaml": TTL, "policies/team.yaml": TEAM_LABEL})  # fmt: skip
JUDGEMENT = Judgement(POLICIES, DenyLevel.LOW, "abc123")


def _job(**spec: Any) -> KubeObject:
    template = {"spec": {"restartPolicy": "Never", **compliant_spec()}}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "team"},
            "spec": {"template": template, **spec}}  # fmt: skip


def _privileged_deployment() -> KubeObject:
    spec = compliant_spec()
    spec["containers"][0]["securityContext"]["privileged"] = True
    return as_deployment(spec)


def _no_probes_deployment() -> KubeObject:
    spec = compliant_spec()
    del spec["containers"][0]["livenessProbe"], spec["containers"][0]["readinessProbe"]
    return as_deployment(spec)


@pytest.mark.parametrize(("body", "allowed", "denied_codes", "warned_codes"), [
    (hack_a_node_pod("team"), False, {"GG1102", "GG1103"}, {"MT1001", "MT2001", "MT1007"}),
    (_privileged_deployment(), False, {"GG1103"}, {"MT2001"}),
    (_no_probes_deployment(), True, set(), {"MT1001", "MT1002"}),
    (as_deployment(compliant_spec()), True, set(), set()),
    (as_pod(compliant_spec()), True, set(), {"MT1007"} - {"MT1007"}),  # owned by a ReplicaSet: not a singleton
])  # fmt: skip
def test_the_validating_verdict_denies_and_warns_by_the_gates_rules(
    body: KubeObject, allowed: bool, denied_codes: set[str], warned_codes: set[str]
) -> None:
    verdict = validate(request_of(body), JUDGEMENT, now=NOW, namespace=None)
    assert verdict.allowed is allowed
    assert {f.code for f in verdict.denying} == denied_codes
    assert warned_codes <= {f.code for f in verdict.warning}


CORPUS = [hack_a_node_pod("team"), _privileged_deployment(), _no_probes_deployment(), as_deployment(compliant_spec()),
          as_pod(compliant_spec()), _job(), _job(ttlSecondsAfterFinished=5)]  # fmt: skip


@pytest.mark.parametrize("deny_level", list(DenyLevel))
@pytest.mark.parametrize("body", CORPUS, ids=[f"{b['kind']}-{i}" for i, b in enumerate(CORPUS)])
def test_admission_gives_the_gates_findings_and_verdict_on_the_mutated_object(
    body: KubeObject, deny_level: DenyLevel
) -> None:
    judgement = Judgement(POLICIES, deny_level)
    mutated = _patched(body, mutate_request(request_of(body), judgement).patch)
    verdict = validate(request_of(mutated), judgement, now=NOW, namespace=None)
    gate = evaluate([Manifest(ObjectKey.of(body), body, "apps/x.yaml")], POLICIES, now=NOW, deny_level=deny_level)
    assert mutated == gate.manifests[0].body
    result = gate.results[0]
    assert verdict.allowed is not result.denied
    assert set(verdict.denying) == set(gate.blocking(result))
    assert set(verdict.denying) | set(verdict.warning) == set(result.findings)


def test_the_denial_names_each_control_in_magtape_form_with_path_and_fix() -> None:
    answer = response(validate(request_of(hack_a_node_pod("team")), JUDGEMENT, now=NOW, namespace=None))["response"]
    assert answer["allowed"] is False and answer["status"]["code"] == 403
    lines = answer["status"]["message"].splitlines()
    assert lines[0] == "Pod/team/my-pod: denied by gitopsguard policy"
    assert "[FAIL] HIGH - Host Namespaces: hostPID shares the node's namespace (GG1102) at spec.hostPID: " \
           "remove hostPID or set it to false" in lines  # fmt: skip
    assert any(line.startswith("[FAIL] HIGH - Privileged Containers") for line in lines)
    assert any(w.startswith("[WARN] LOW - liveness probe missing") for w in answer["warnings"])


def test_each_finding_of_a_denial_and_its_warnings_names_its_code_once() -> None:
    answer = response(validate(request_of(hack_a_node_pod("team")), JUDGEMENT, now=NOW, namespace=None))["response"]
    lines = [*answer["status"]["message"].splitlines()[1:], *answer["warnings"]]
    assert any("(MT1001)" in line for line in lines)
    for line in lines:
        codes = [word for word in line.replace("(", " ").replace(")", " ").split() if word[:2] in ("MT", "GG")]
        assert len(codes) == len(set(codes)), f"a code said twice: {line}"


def test_an_unexpired_exception_admits_and_an_expired_one_denies() -> None:
    body = hack_a_node_pod("team", name="legacy-agent")
    policies = parse_policies({"p.yaml": BASELINE, "e.yaml": exception("team", "2026-12-05T13:00:00Z")})
    judgement = Judgement(policies, DenyLevel.LOW)
    before = validate(request_of(body), judgement, now=NOW, namespace=None)
    after = validate(request_of(body), judgement, now=datetime(2026, 12, 5, 13, 0, tzinfo=UTC), namespace=None)
    assert before.allowed and {e.name for _, e in before.excepted} == {"legacy-agent"}
    assert not after.allowed


def test_an_object_without_a_namespace_is_judged_in_the_requests_namespace() -> None:
    """Leaving the namespace out of the object must not dodge a policy scoped to the namespace it is created in."""
    body = hack_a_node_pod("team")
    del body["metadata"]["namespace"]
    scoped = BASELINE.replace("match: {kinds: [Pod, Deployment, Job]}", "match: {namespaces: [prod]}")
    judgement = Judgement(parse_policies({"p.yaml": scoped}), DenyLevel.LOW)
    verdict = validate(request_of(body, namespace="prod"), judgement, now=NOW, namespace=None)
    assert not verdict.allowed


def test_a_foreign_namespace_in_the_object_does_not_borrow_that_namespaces_exception() -> None:
    body = hack_a_node_pod("team", name="legacy-agent")
    policies = parse_policies({"p.yaml": BASELINE, "e.yaml": exception("team", "2027-01-01T00:00:00Z")})
    verdict = validate(request_of(body, namespace="prod"), Judgement(policies, DenyLevel.LOW), now=NOW, namespace=None)
    assert not verdict.allowed


def test_without_an_applied_revision_everything_judged_is_denied() -> None:
    verdict = validate(request_of(as_deployment(compliant_spec())), None, now=NOW, namespace=None)
    assert not verdict.allowed and "has not applied a revision yet" in verdict.reason


@pytest.mark.parametrize("operation", ["DELETE", "CONNECT"])
def test_deletes_and_connects_are_not_judged(operation: str) -> None:
    verdict = validate(request_of(hack_a_node_pod("team"), operation=operation), JUDGEMENT, now=NOW, namespace=None)
    assert verdict.allowed and not verdict.denying


def test_an_object_of_a_shape_no_policy_expects_is_denied_with_its_name_not_crashed() -> None:
    body = _job()
    body["metadata"]["labels"] = "not-a-map"  # the API server would refuse it; a direct caller need not
    verdict = mutate_request(request_of(body), JUDGEMENT)
    assert not verdict.allowed and verdict.reason.startswith("Job/team/j: the policies cannot judge")
    assert response(verdict)["response"]["status"]["code"] == 400


def _patched(body: KubeObject, operations: tuple[dict[str, Any], ...]) -> KubeObject:
    """A small RFC 6902 applier for add/replace (what the mutating webhook sends)."""
    result = copy.deepcopy(body)
    for operation in operations:
        steps = [s.replace("~1", "/").replace("~0", "~") for s in operation["path"].split("/")[1:]]
        node = result
        for step in steps[:-1]:
            node = node[step]
        assert operation["op"] == "add" or node.get(steps[-1]) is None
        node[steps[-1]] = copy.deepcopy(operation["value"])
    return result


@pytest.mark.parametrize(("body", "expected"), [
    (_job(), [{"op": "add", "path": "/metadata/labels",  # policies/team.yaml comes before policies/ttl.yaml
               "value": {"app.kubernetes.io/managed-by": "gitopsguard", "team": "unknown"}},
              {"op": "add", "path": "/spec/ttlSecondsAfterFinished", "value": 90}]),
    (_job(ttlSecondsAfterFinished=5), [{"op": "add", "path": "/metadata/labels",
                                        "value": {"app.kubernetes.io/managed-by": "gitopsguard", "team": "unknown"}}]),
    ({**_job(ttlSecondsAfterFinished=None), "metadata": {"name": "j", "labels": {"team": "a"}}},
     [{"op": "add", "path": "/metadata/labels/app.kubernetes.io~1managed-by", "value": "gitopsguard"},
      {"op": "replace", "path": "/spec/ttlSecondsAfterFinished", "value": 90}]),
    (as_pod(compliant_spec()), []),
])  # fmt: skip
def test_the_patch_adds_only_what_is_absent_in_policy_order(body: KubeObject, expected: list[dict[str, Any]]) -> None:
    verdict = mutate_request(request_of(body, namespace="team"), JUDGEMENT)
    assert verdict.allowed and list(verdict.patch) == expected
    answer = response(verdict)["response"]
    if expected:
        assert answer["patchType"] == "JSONPatch"
        assert json.loads(base64.b64decode(answer["patch"])) == expected
    else:
        assert "patch" not in answer


def test_pod_security_findings_plug_in_enforce_denies_warn_warns_audit_is_kept() -> None:
    def finding(code: str) -> Finding:
        return Finding("psa", code, "Host Namespaces", "baseline", Severity.HIGH, f"m {code}", "", "", True)

    seen: list[tuple[Any, ...]] = []

    def pod_security(
        body: KubeObject, labels: Any, namespace: str, user: str, operation: str, old: KubeObject | None
    ) -> PodSecurityFindings:
        seen.append((dict(labels), namespace, user, operation, old))
        return (finding("E"),), (finding("W"),), (finding("A"),)

    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "labels": {"x": "y"}}}
    judgement = Judgement(parse_policies({}), DenyLevel.OFF)  # the deny level does not soften an enforce label
    verdict = validate(request_of(as_deployment(compliant_spec())), judgement, now=NOW, namespace=ns,
                       pod_security=pod_security)  # fmt: skip
    assert seen == [({"x": "y"}, "team", "alice", "CREATE", None)]
    assert not verdict.allowed
    assert [f.code for f in verdict.denying] == ["E"] and [f.code for f in verdict.warning] == ["W"]
    assert [f.code for f in verdict.audit] == ["A"]


def test_an_update_that_brings_no_new_finding_is_admitted_with_its_old_ones_as_warnings() -> None:
    """The garbage collector and the controllers update objects that predate admission (ownerReferences,
    labels, finalizers); denying those would wedge them. Only what an update brings is denied, as Pod Security
    Admission lets metadata-only updates through; the live scan deals with what stood before."""
    old = hack_a_node_pod("team")
    new = copy.deepcopy(old)
    new["metadata"]["labels"] = {"orphaned": "true"}
    verdict = validate(request_of(new, operation="UPDATE", old=old), JUDGEMENT, now=NOW, namespace=None)
    assert verdict.allowed
    assert {"GG1102", "GG1103"} <= {f.code for f in verdict.warning}


def test_an_update_that_brings_a_new_finding_is_denied_for_it_alone() -> None:
    old = _privileged_deployment()
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["hostPID"] = True
    verdict = validate(request_of(new, operation="UPDATE", old=old), JUDGEMENT, now=NOW, namespace=None)
    assert not verdict.allowed
    assert [f.path for f in verdict.denying] == ["spec.template.spec.hostPID"]
    assert "GG1103" in {f.code for f in verdict.warning}  # privileged stood before: warned, not denied
