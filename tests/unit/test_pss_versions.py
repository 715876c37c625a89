"""pss-baseline and pss-restricted at a chosen Kubernetes version: what changed between releases, the
version as a policy parameter and as ``check --pss-version``, and version strings that are not versions."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.cli import main
from gitopsguard.errors import PolicyError
from gitopsguard.policy import parse_policies
from gitopsguard.policy.packs import pss
from tests.unit.policy.workloads import as_pod, compliant_spec


def _controls(body: dict[str, Any], level: str, version: str) -> set[str]:
    return {hit.control for hit in pss.evaluate_pod(body, level, pss.parse_version(version))}


def _with(change: Any) -> dict[str, Any]:
    spec = compliant_spec()
    change(spec)
    return as_pod(spec)


PROBE_TO_HOST = _with(lambda s: s["containers"][0]["livenessProbe"]["httpGet"].update(host="169.254.169.254"))
UNMASKED_IN_USERNS = _with(lambda s: (s.update(hostUsers=False),
                                      s["containers"][0]["securityContext"].update(procMount="Unmasked")))  # fmt: skip
NEW_SAFE_SYSCTL = _with(lambda s: s["securityContext"].update(sysctls=[{"name": "net.ipv4.tcp_notsent_lowat",
                                                                         "value": "16384"}]))  # fmt: skip


def test_a_probe_aimed_at_another_host_is_refused_at_latest_and_was_allowed_before_1_34() -> None:
    assert _controls(PROBE_TO_HOST, "baseline", "latest") == {"Host Probes / Lifecycle Hooks"}
    assert _controls(PROBE_TO_HOST, "restricted", "latest") == {"Host Probes / Lifecycle Hooks"}
    assert _controls(PROBE_TO_HOST, "baseline", "v1.33") == set()


def test_unmasked_proc_in_a_user_namespace_is_baseline_since_1_35_but_never_restricted() -> None:
    assert _controls(UNMASKED_IN_USERNS, "baseline", "latest") == set()
    assert _controls(UNMASKED_IN_USERNS, "baseline", "v1.34") == {"/proc Mount Type"}
    assert _controls(UNMASKED_IN_USERNS, "restricted", "latest") == {"/proc Mount Type"}


def test_a_sysctl_made_safe_in_1_37_is_refused_at_1_36() -> None:
    assert _controls(NEW_SAFE_SYSCTL, "baseline", "latest") == set()
    assert _controls(NEW_SAFE_SYSCTL, "baseline", "v1.36") == {"Sysctls"}


def test_a_pod_that_says_it_may_run_as_root_is_refused_even_when_each_container_says_otherwise() -> None:
    # main missed this: only the containers' own runAsNonRoot was read once they set it
    pod = _with(lambda s: s["securityContext"].update(runAsNonRoot=False))
    assert _controls(pod, "restricted", "latest") == {"Running as Non-root"}


def test_a_container_that_turns_seccomp_off_is_refused_under_a_pod_that_turns_it_on() -> None:
    pod = _with(lambda s: s["containers"][0]["securityContext"].update(seccompProfile={"type": "Unconfined"}))
    assert _controls(pod, "restricted", "latest") == {"Seccomp"}
    assert _controls(pod, "baseline", "latest") == {"Seccomp"}


def test_before_1_19_seccomp_was_read_from_annotations_and_the_fields_are_not() -> None:
    annotated = as_pod(compliant_spec(), {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"})
    assert _controls(annotated, "baseline", "v1.18") == {"Seccomp"}
    assert _controls(annotated, "baseline", "v1.19") == set()


def test_a_pod_template_is_checked_like_a_pod() -> None:
    spec = compliant_spec()
    spec["hostPID"] = True
    template = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}, "template": {"spec": spec}}
    (hit,) = pss.evaluate_pod(template, "baseline")
    assert (hit.control, hit.path) == ("Host Namespaces", "template.spec.hostPID")


POLICY = """apiVersion: gitopsguard.io/v1alpha1
kind: Policy
metadata: {name: pss}
spec:
  enforcement: enforce
  builtin: {name: pss-baseline, params: {version: VERSION}}
"""


def test_a_policy_file_sets_the_version_as_a_parameter() -> None:
    older = parse_policies({"p.yaml": POLICY.replace("VERSION", "v1.33")}).policies[0]
    newer = parse_policies({"p.yaml": POLICY.replace("VERSION", "latest")}).policies[0]
    assert older.check is not None and newer.check is not None
    from gitopsguard.policy.model import Context

    assert older.check(PROBE_TO_HOST, Context()) == []
    assert [h.code for h in newer.check(PROBE_TO_HOST, Context())] == ["GG1112"]


@pytest.mark.parametrize(
    "bad",
    ["1.25", "v1.025", "v2.0", "'v1.25 '", "Latest", "'v1.\uff12\uff15'", "[v1.25]", "true", "v1.99999999999999999999"],
)
def test_a_policy_file_with_a_version_that_is_not_one_is_refused_naming_file_and_line(bad: str) -> None:
    with pytest.raises(PolicyError, match=r"^p\.yaml:6: built-in pss-baseline version .* must be \"latest\""):
        parse_policies({"p.yaml": POLICY.replace("VERSION", bad)})


def test_a_policy_file_with_an_unknown_parameter_is_refused() -> None:
    with pytest.raises(PolicyError, match="takes only version"):
        parse_policies({"p.yaml": POLICY.replace("version: VERSION", "level: privileged")})


UPSTREAM = re.compile(r"v1\.([0-9]|[1-9][0-9]*)")  # kubernetes/pod-security-admission api/helpers.go


@given(st.text(alphabet="v1.0123456789latesx\u0663\uff12 \n", max_size=12) | st.from_regex(UPSTREAM, fullmatch=True))
@example("v1.99999999999999999999")  # overflows Kubernetes' int: not a version
@example("v1.3\n")
def test_a_version_is_latest_or_v1_x_as_kubernetes_parses_it(text: str) -> None:
    match = UPSTREAM.fullmatch(text)
    valid = text == "latest" or (match is not None and int(match.group(1)) < 2**63)
    if not valid:
        with pytest.raises(pss.BadVersionError):
            pss.parse_version(text)
    else:
        assert 0 <= pss.parse_version(text) <= pss.LATEST


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pod.yaml").write_text(json.dumps(copy.deepcopy(PROBE_TO_HOST)))
    return tmp_path


def test_check_pss_version_chooses_the_release_the_packs_check(repo: Path) -> None:
    newest = CliRunner().invoke(main, ["check", "pod.yaml", "--pack", "pss-baseline"])
    assert newest.exit_code == 1 and "GG1112" in newest.output, newest.output
    older = CliRunner().invoke(main, ["check", "pod.yaml", "--pack", "pss-baseline", "--pss-version", "v1.33"])
    assert older.exit_code == 0, older.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pack", "pss-baseline", "--pss-version", "1.33"], "error: --pss-version: version '1.33' must be"),
        (["--pack", "magtape", "--pss-version", "v1.33"], "error: --pss-version v1.33: applies to the pss-baseline"),
    ],
)
def test_check_refuses_a_pss_version_it_cannot_use(repo: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["check", "pod.yaml", *args])
    assert result.exit_code == 2 and result.output.startswith(message), result.output
