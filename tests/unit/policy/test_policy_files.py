"""Policy and exception files: bad input is refused whole, naming the file and line; CEL rules, mutations,
exceptions and the deny level behave as documented."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gitopsguard.errors import PolicyError
from gitopsguard.model import Manifest
from gitopsguard.policy import DenyLevel, evaluate, parse_policies
from gitopsguard.render.plain import read_text

HEADER = "apiVersion: gitopsguard.io/v1alpha1\nkind: Policy\nmetadata: {name: p}\nspec:\n"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _objects(text: str) -> list[Manifest]:
    return read_text(text, "apps/x.yaml")


DEPLOY = _objects("""apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {team: a}}
spec: {replicas: 1}
""")


@pytest.mark.parametrize(("text", "where", "says"), [
    ("kind: Policy\n  bad: [", "policies/p.yaml:2", "not valid YAML"),
    (HEADER + "  builtin: {name: pss-extreme}\n", "policies/p.yaml:5", "unknown built-in 'pss-extreme'"),
    (HEADER + "  code: GG1\n  validations:\n  - expression: 'object.spec.replicas >'\n",
     "policies/p.yaml:7", "CEL expression does not compile"),
    (HEADER + "  code: GG1\n  validations:\n  - expression: 'undeclared.x == 1'\n",
     "policies/p.yaml:7", "undeclared reference"),
    (HEADER + "  builtin: {name: required-labels}\n", "policies/p.yaml:5", "needs `labels`"),
    (HEADER + "  builtin: {name: magtape}\n  severity: URGENT\n", "policies/p.yaml:6", "severity 'URGENT'"),
    (HEADER + "  builtin: {name: magtape}\n  live: {action: delete, gracePeriod: soon}\n", "policies/p.yaml:6",
     "gracePeriod 'soon'"),
    (HEADER + "  builtin: {name: magtape}\n  colour: blue\n", "policies/p.yaml:6", "unknown field spec.colour"),
])  # fmt: skip
def test_an_invalid_policy_file_is_refused_with_its_file_and_line(text: str, where: str, says: str) -> None:
    good = HEADER.replace("name: p", "name: fine") + "  builtin: {name: magtape}\n"
    with pytest.raises(PolicyError) as error:
        parse_policies({"policies/fine.yaml": good, "policies/p.yaml": text})
    assert str(error.value).startswith(where), str(error.value)
    assert says in str(error.value)


def _exception(extra: str) -> str:
    return ("apiVersion: gitopsguard.io/v1alpha1\nkind: PolicyException\nmetadata: {name: e}\nspec:\n"
            "  policies: [p]\n  match: {namespaces: [shop]}\n" + extra)  # fmt: skip


@pytest.mark.parametrize(("extra", "says"), [
    ("  expires: 2026-12-01T00:00:00Z\n", "`reason` is required"),
    ("  reason: migration\n", "`expires` is required"),
    ("  reason: migration\n  expires: 2026-12-01T00:00:00\n", "needs a time zone"),
])  # fmt: skip
def test_an_exception_needs_a_reason_and_an_expiry_with_a_time_zone(extra: str, says: str) -> None:
    with pytest.raises(PolicyError, match=says):
        parse_policies({"p.yaml": HEADER + "  builtin: {name: magtape}\n", "e.yaml": _exception(extra)})


def test_an_exception_for_an_unknown_policy_is_refused() -> None:
    with pytest.raises(PolicyError, match="unknown policies: p"):
        parse_policies({"e.yaml": _exception("  reason: r\n  expires: 2026-12-01T00:00:00Z\n")})


CEL_POLICY = (
    HEADER
    + """  code: GG3001
  severity: HIGH
  enforcement: enforce
  match: {kinds: [Deployment]}
  validations:
  - expression: "object.spec.replicas >= 2"
    message: run at least two replicas
    path: spec.replicas
"""
)


def test_a_failing_cel_rule_denies_the_object_with_its_message_code_and_path() -> None:
    result = evaluate(DEPLOY, parse_policies({"p.yaml": CEL_POLICY}), now=NOW, deny_level=DenyLevel.LOW)
    (finding,) = result.results[0].findings
    assert (finding.code, finding.message, finding.path, finding.severity) == (
        "GG3001", "run at least two replicas", "spec.replicas", "HIGH")  # fmt: skip
    assert result.results[0].denied


def test_a_cel_rule_that_errors_at_run_time_fails_closed_naming_its_file_and_line() -> None:
    policy = CEL_POLICY.replace("object.spec.replicas >= 2", "object.spec.strategy.type == 'Recreate'")
    result = evaluate(DEPLOY, parse_policies({"policies/p.yaml": policy}), now=NOW, deny_level=DenyLevel.LOW)
    (finding,) = result.results[0].findings
    assert finding.message.startswith("policies/p.yaml:10: CEL expression failed on this object")
    assert result.results[0].denied


@pytest.mark.parametrize(("level", "enforcement", "denied"), [
    ("OFF", "enforce", False), ("LOW", "enforce", True), ("HIGH", "enforce", True), ("HIGH", "audit", False),
])  # fmt: skip
def test_deny_level_and_enforcement_decide_whether_a_finding_blocks(level: str, enforcement: str, denied: bool) -> None:
    policies = parse_policies({"p.yaml": CEL_POLICY.replace("enforcement: enforce", f"enforcement: {enforcement}")})
    assert evaluate(DEPLOY, policies, now=NOW, deny_level=DenyLevel(level)).results[0].denied is denied


def test_a_med_finding_blocks_at_deny_level_med_but_not_low() -> None:
    policies = parse_policies({"p.yaml": CEL_POLICY.replace("severity: HIGH", "severity: MED")})
    assert not evaluate(DEPLOY, policies, now=NOW, deny_level=DenyLevel.LOW).results[0].denied
    assert evaluate(DEPLOY, policies, now=NOW, deny_level=DenyLevel.MED).results[0].denied


def test_an_exception_covers_a_finding_until_the_instant_it_expires() -> None:
    texts = {"p.yaml": CEL_POLICY,
             "e.yaml": _exception("  reason: load test\n  expires: 2026-11-24T13:00:00Z\n")}  # fmt: skip
    policies = parse_policies(texts)
    before = evaluate(DEPLOY, policies, now=NOW + timedelta(minutes=59, seconds=59), deny_level=DenyLevel.LOW)
    at = evaluate(DEPLOY, policies, now=NOW + timedelta(hours=1), deny_level=DenyLevel.LOW)
    assert not before.results[0].denied and "load test" in str(before.results[0].excepted[0][1])
    assert at.results[0].denied and not at.results[0].excepted


def test_an_exception_for_one_control_leaves_the_others_standing() -> None:
    texts = {"p.yaml": HEADER + "  builtin: {name: magtape}\n  enforcement: enforce\n",
             "e.yaml": _exception("  controls: [MT1001]\n  reason: r\n  expires: 2027-01-01T00:00:00Z\n")}  # fmt: skip
    pod = _objects("""apiVersion: v1
kind: Pod
metadata: {name: x, namespace: shop}
spec: {containers: [{name: c, image: i, readinessProbe: {exec: {command: [true]}},
       resources: {limits: {cpu: 1, memory: 1}, requests: {cpu: 1, memory: 1}}}]}
""")
    result = evaluate(pod, parse_policies(texts), now=NOW, deny_level=DenyLevel.LOW).results[0]
    assert [f.code for f, _ in result.excepted] == ["MT1001"]
    assert [f.code for f in result.findings] == ["MT1007"]


MUTATE = (
    HEADER
    + """  mutate:
    addLabels: {team: platform, owner: sre}
    setDefaults:
    - kinds: [Job]
      path: spec.ttlSecondsAfterFinished
      value: 3600
"""
)


def test_mutations_add_missing_labels_and_defaults_without_overwriting() -> None:
    job = _objects("apiVersion: batch/v1\nkind: Job\nmetadata: {name: j, labels: {team: a}}\nspec: {}\n")
    result = evaluate([*DEPLOY, *job], parse_policies({"p.yaml": MUTATE}), now=NOW, deny_level=DenyLevel.LOW)
    deploy, mutated_job = result.manifests
    assert deploy.body["metadata"]["labels"] == {"team": "a", "owner": "sre"}
    assert "ttlSecondsAfterFinished" not in deploy.body["spec"]
    assert mutated_job.body["spec"]["ttlSecondsAfterFinished"] == 3600
    assert job[0].body["spec"] == {}  # the input is never changed in place


def test_mutations_run_before_validation() -> None:
    validate = HEADER.replace("name: p", "name: v") + (
        "  code: GG3002\n  enforcement: enforce\n  severity: HIGH\n"
        "  builtin: {name: required-labels, params: {labels: [owner]}}\n"
    )
    policies = parse_policies({"a.yaml": MUTATE, "b.yaml": validate})
    assert not evaluate(DEPLOY, policies, now=NOW, deny_level=DenyLevel.LOW).results[0].findings
