"""Every Pod Security Standards control: a compliant pod passes; each violation fails with its control's
exact name and level, on a Pod, a Deployment and a CronJob."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gitopsguard.policy.model import Context
from gitopsguard.policy.packs import pss
from tests.unit.policy.workloads import SHAPES, compliant_spec

Spec = dict[str, Any]


def _container(spec: Spec, **security: Any) -> None:
    spec["containers"][0]["securityContext"].update(security)


def _init(spec: Spec, **security: Any) -> None:
    spec["initContainers"] = [{"name": "init", "image": "busybox", "securityContext": {
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, **security}}]  # fmt: skip


def _ephemeral(spec: Spec, **security: Any) -> None:
    spec["ephemeralContainers"] = [{"name": "debug", "image": "busybox", "securityContext": {
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, **security}}]  # fmt: skip


# (case id, control name, level, how to break a compliant spec, annotations)
VIOLATIONS: list[tuple[str, str, str, Callable[[Spec], object], dict[str, str] | None]] = [
    ("hostprocess", "HostProcess", "baseline",
     lambda s: s["securityContext"].update(windowsOptions={"hostProcess": True}), None),
    ("host-network", "Host Namespaces", "baseline", lambda s: s.update(hostNetwork=True), None),
    ("host-pid", "Host Namespaces", "baseline", lambda s: s.update(hostPID=True), None),
    ("host-ipc", "Host Namespaces", "baseline", lambda s: s.update(hostIPC=True), None),
    ("privileged", "Privileged Containers", "baseline", lambda s: _container(s, privileged=True), None),
    ("privileged-init", "Privileged Containers", "baseline", lambda s: _init(s, privileged=True), None),
    ("privileged-ephemeral", "Privileged Containers", "baseline", lambda s: _ephemeral(s, privileged=True), None),
    ("cap-sys-admin", "Capabilities", "baseline",
     lambda s: _container(s, capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN"]}), None),
    ("hostpath", "HostPath Volumes", "baseline",
     lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}), None),
    ("hostport", "Host Ports", "baseline",
     lambda s: s["containers"][0].update(ports=[{"containerPort": 80, "hostPort": 80}]), None),
    ("apparmor-annotation", "AppArmor", "baseline", lambda s: None,
     {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}),
    ("apparmor-field", "AppArmor", "baseline", lambda s: _container(s, appArmorProfile={"type": "Unconfined"}), None),
    ("selinux-type", "SELinux", "baseline", lambda s: _container(s, seLinuxOptions={"type": "spc_t"}), None),
    ("selinux-user", "SELinux", "baseline", lambda s: s["securityContext"].update(seLinuxOptions={"user": "root"}),
     None),
    ("proc-mount", "/proc Mount Type", "baseline", lambda s: _container(s, procMount="Unmasked"), None),
    ("seccomp-unconfined", "Seccomp", "baseline",
     lambda s: _container(s, seccompProfile={"type": "Unconfined"}), None),
    ("sysctl", "Sysctls", "baseline",
     lambda s: s["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]), None),
    ("volume-type", "Volume Types", "restricted",
     lambda s: s["volumes"].append({"name": "n", "nfs": {"server": "x", "path": "/"}}), None),
    ("escalation", "Privilege Escalation", "restricted", lambda s: _container(s, allowPrivilegeEscalation=True), None),
    ("escalation-unset", "Privilege Escalation", "restricted",
     lambda s: s["containers"][0]["securityContext"].pop("allowPrivilegeEscalation"), None),
    ("non-root", "Running as Non-root", "restricted", lambda s: _container(s, runAsNonRoot=False), None),
    ("non-root-unset", "Running as Non-root", "restricted", lambda s: (
        s["securityContext"].pop("runAsNonRoot"), s["containers"][0]["securityContext"].pop("runAsNonRoot")), None),
    ("root-user", "Running as Non-root user", "restricted", lambda s: _container(s, runAsUser=0), None),
    ("seccomp-unset", "Seccomp", "restricted", lambda s: (
        s["securityContext"].pop("seccompProfile"), s["containers"][0]["securityContext"].pop("seccompProfile")),
     None),
    ("no-drop-all", "Capabilities", "restricted", lambda s: _container(s, capabilities={"drop": ["NET_RAW"]}), None),
    ("add-chown", "Capabilities", "restricted",
     lambda s: _container(s, capabilities={"drop": ["ALL"], "add": ["CHOWN"]}), None),
]  # fmt: skip


# Restricted replaces four baseline controls with stricter ones, as Kubernetes evaluates it: these violations
# are found once, by the restricted control.
REPLACED_IN_RESTRICTED = {
    "cap-sys-admin": ("Capabilities", "restricted"),
    "hostpath": ("Volume Types", "restricted"),
    "proc-mount": ("/proc Mount Type", "restricted"),
    "seccomp-unconfined": ("Seccomp", "restricted"),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_a_restricted_compliant_workload_has_no_findings(shape: str) -> None:
    assert pss.restricted(SHAPES[shape](compliant_spec()), Context()) == []


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    ("case", "control", "level", "breaks", "annotations"), VIOLATIONS, ids=[v[0] for v in VIOLATIONS]
)
def test_each_violation_is_found_with_its_control_name_and_level(
    shape: str, case: str, control: str, level: str, breaks: Callable[[Spec], None],
    annotations: dict[str, str] | None,
) -> None:  # fmt: skip
    spec = compliant_spec()
    breaks(spec)
    hits = pss.restricted(SHAPES[shape](spec, annotations), Context())
    assert {(h.control, h.level) for h in hits} == {REPLACED_IN_RESTRICTED.get(case, (control, level))}, hits
    baseline_hits = pss.baseline(SHAPES[shape](spec, annotations), Context())
    assert {(h.control, h.level) for h in baseline_hits} == ({(control, level)} if level == "baseline" else set())


def test_findings_name_the_field_path_inside_the_pod_template() -> None:
    spec = compliant_spec()
    _container(spec, privileged=True)
    (hit,) = pss.baseline(SHAPES["CronJob"](spec), Context())
    assert hit.path == "spec.jobTemplate.spec.template.spec.containers[0].securityContext.privileged"


def test_restricted_controls_that_exempt_windows_pods_do_not_fire_for_them() -> None:
    spec = compliant_spec()
    spec["os"] = {"name": "windows"}
    spec["containers"][0]["securityContext"] = {"runAsNonRoot": True}
    assert pss.restricted(SHAPES["Pod"](spec), Context()) == []


def test_kinds_without_a_pod_template_are_ignored() -> None:
    assert pss.restricted({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}, Context()) == []
