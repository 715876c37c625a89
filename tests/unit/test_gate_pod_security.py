"""The Git gate and ``gitopsguard check`` honour the pod-security.kubernetes.io labels of the Namespaces a
revision defines (and, for the gate, of live Namespaces), as Kubernetes Pod Security Admission would at
apply: enforce blocks Pods at any deny level, workload templates get non-blocking warnings."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from gitopsguard.cli import main
from gitopsguard.gate import RevisionBlockedError, gate
from gitopsguard.model import Manifest
from gitopsguard.policy import DenyLevel, Evaluation, PolicySet, pack_policy
from gitopsguard.policy.podsecurity import Exemptions
from gitopsguard.render.plain import read_text

DATA = Path(__file__).parent.parent / "data" / "podsecurity-revision"
NOW = datetime(2026, 12, 5, tzinfo=UTC)


def manifests(*names: str) -> list[Manifest]:
    return [m for name in names for m in read_text((DATA / name).read_text(), name)]


NO_POLICIES, NO_EXEMPTIONS = PolicySet(), Exemptions()


def run_gate(
    found: list[Manifest], *, deny_level: DenyLevel = DenyLevel.LOW, policies: PolicySet = NO_POLICIES,
    namespaces: dict[str, Any] | None = None, exemptions: Exemptions = NO_EXEMPTIONS,
) -> Evaluation:  # fmt: skip
    return gate(found, policies, deny_level=deny_level, now=NOW, commit="c0ffee" * 7, namespaces=namespaces or {},
                exemptions=exemptions)  # fmt: skip


@pytest.mark.parametrize("deny_level", list(DenyLevel))
def test_a_pod_the_revisions_namespace_enforces_baseline_on_blocks_the_revision_at_any_deny_level(
    deny_level: DenyLevel,
) -> None:
    with pytest.raises(RevisionBlockedError) as raised:
        run_gate(manifests("shop-enforce-baseline.yaml"), deny_level=deny_level)
    problems = raised.value.problems
    assert "take no PolicyException (as in Kubernetes): fix the object, or change its Namespace's labels" in str(
        raised.value
    )
    assert {p.split(" HIGH ")[1].split(":")[0] for p in problems} == {"Host Namespaces", "Privileged Containers"}
    privileged = next(p for p in problems if "Privileged Containers" in p)
    assert privileged == (
        "shop-enforce-baseline.yaml:9: Pod/shop/my-pod: GG1103 HIGH Privileged Containers: container 'nsenter' is "
        "privileged (policy pod-security.kubernetes.io/enforce=baseline:latest; fix: set securityContext.privileged "
        "to false)"
    )


def test_a_restricted_finding_blocks_although_the_deny_level_would_not_block_its_severity() -> None:
    with pytest.raises(RevisionBlockedError) as raised:
        run_gate(manifests("pay-enforce-restricted.yaml"), deny_level=DenyLevel.LOW)  # LOW blocks only HIGH
    assert all(" MED " in p and "enforce=restricted:v1.30" in p for p in raised.value.problems)
    assert any("Running as Non-root" in p for p in raised.value.problems)


def test_a_workload_template_gets_a_warning_that_does_not_block() -> None:
    evaluation = run_gate(manifests("shop-workload.yaml"))
    deployment = next(r for r in evaluation.results if r.key.kind == "Deployment")
    (warning,) = deployment.findings
    assert not deployment.denied and not warning.enforced and evaluation.blocking(deployment) == ()
    assert (warning.control, warning.policy) == ("Host Namespaces", "pod-security.kubernetes.io/warn=baseline:latest")


def test_a_namespace_with_an_invalid_pod_security_label_blocks_naming_the_label() -> None:
    with pytest.raises(RevisionBlockedError) as raised:
        run_gate(manifests("bad-label.yaml"))
    (problem,) = raised.value.problems
    assert problem.startswith("bad-label.yaml:1: Namespace/lab: GG1100 HIGH Namespace/lab: label "
                              "pod-security.kubernetes.io/enforce='Restricted' must be one of")  # fmt: skip


def test_without_labels_the_pod_passes_when_no_policy_applies() -> None:
    assert run_gate(manifests("unlabelled.yaml")).blocked == ()


def test_a_live_namespaces_labels_count_and_the_revisions_own_namespace_wins() -> None:
    pod = [m for m in manifests("shop-enforce-baseline.yaml") if m.key.kind == "Pod"]
    live = next(yaml.safe_load_all((DATA / "shop-enforce-baseline.yaml").read_text()))
    with pytest.raises(RevisionBlockedError):
        run_gate(pod, namespaces={"shop": live})
    assert run_gate(manifests("unlabelled.yaml"), namespaces={"shop": live}).blocked == ()


def test_an_exempt_namespace_is_not_blocked() -> None:
    exempt = Exemptions(namespaces=frozenset({"shop"}))
    assert run_gate(manifests("shop-enforce-baseline.yaml"), exemptions=exempt).blocked == ()


def test_a_pod_of_a_shape_the_controls_cannot_read_is_refused_not_crashed_on() -> None:
    with pytest.raises(RevisionBlockedError) as raised:
        run_gate(manifests("odd-shape.yaml"))
    (problem,) = raised.value.problems
    assert problem.startswith("odd-shape.yaml:7: Pod/shop/odd: GG1100 HIGH Pod/shop/odd: Pod Security cannot read it "
                              "(AttributeError: 'str' object has no attribute 'get'); not compliant")  # fmt: skip


def test_the_pack_and_the_label_report_the_same_control_on_the_same_field() -> None:
    with pytest.raises(RevisionBlockedError) as raised:
        run_gate(manifests("shop-enforce-baseline.yaml"), policies=PolicySet((pack_policy("pss-baseline"),)))
    found = raised.value.evaluation.results[1].findings
    by_policy: dict[str, set[tuple[str, str, str]]] = {}
    for f in found:
        by_policy.setdefault(f.policy.split("=")[0], set()).add((f.code, f.path, f.message))
    assert by_policy["pss-baseline"] == by_policy["pod-security.kubernetes.io/enforce"]


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    shutil.copytree(DATA, tmp_path / "apps")
    return tmp_path


def test_check_denies_the_pod_and_marks_the_label_finding_blocking(repo: Path) -> None:
    result = CliRunner().invoke(main, ["check", "apps/shop-enforce-baseline.yaml", "--format", "json",
                                       "--deny-level", "OFF"])  # fmt: skip
    assert result.exit_code == 1, result.output
    pod = json.loads(result.output)["objects"][1]
    assert pod["verdict"] == "denied"
    assert {(f["control"], f["policy"], f["blocking"]) for f in pod["findings"]} == {
        ("Host Namespaces", "pod-security.kubernetes.io/enforce=baseline:latest", True),
        ("Privileged Containers", "pod-security.kubernetes.io/enforce=baseline:latest", True),
    }


def test_check_reports_a_workload_warning_and_exits_0(repo: Path) -> None:
    result = CliRunner().invoke(main, ["check", "apps/shop-workload.yaml"])
    assert result.exit_code == 0, result.output
    assert "Host Namespaces: hostNetwork shares the node's namespace" in result.output
    assert "policy pod-security.kubernetes.io/warn=baseline:latest" in result.output
    assert "take no PolicyException" not in result.output
