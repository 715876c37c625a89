"""Pod Security Admission label semantics (gitopsguard.policy.podsecurity), as Kubernetes defines them: what
the namespace labels mean, what is enforced, warned and audited, and what is exempt or not checked."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.policy.model import Context
from gitopsguard.policy.packs import pss
from gitopsguard.policy.podsecurity import (
    PREFIX,
    Exemptions,
    LevelVersion,
    NamespacePolicy,
    namespace_policy,
    pod_security,
)

# The "hack a node" Pod, as kubectl run --overrides sends it.
HACK_A_NODE: dict[str, Any] = yaml.safe_load("""
apiVersion: v1
kind: Pod
metadata: {name: my-pod, namespace: shop}
spec:
  hostPID: true
  hostNetwork: true
  containers:
  - name: nsenter
    image: alpine
    securityContext: {privileged: true}
    command: [nsenter, --target, "1", --mount, --uts, --ipc, --net, --pid, bash, -l]
""")
# Passes baseline, fails restricted (no seccomp, runAsNonRoot, drop ALL, allowPrivilegeEscalation).
PLAIN_POD: dict[str, Any] = yaml.safe_load("""
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
spec:
  containers:
  - {name: web, image: nginx:1.25}
""")
PLAIN_DEPLOYMENT: dict[str, Any] = yaml.safe_load("""
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      hostNetwork: true
      containers:
      - {name: web, image: nginx:1.25}
""")


def labels(**modes: str) -> dict[str, str]:
    return {PREFIX + mode.replace("_", "-"): value for mode, value in modes.items()}


def controls(findings: tuple[Any, ...]) -> set[str]:
    return {f.control for f in findings}


P, B, R = "privileged", "baseline", "restricted"
LATEST = "latest"


# Expected policies from kubernetes/pod-security-admission api/helpers_test.go TestPolicyToEvaluate (facts).
@pytest.mark.parametrize(
    ("given_labels", "enforce", "warn", "audit", "invalid"),
    [
        ({}, (P, LATEST), (P, LATEST), (P, LATEST), 0),
        (labels(enforce=B), (B, LATEST), (B, LATEST), (P, LATEST), 0),
        (labels(warn=R), (P, LATEST), (R, LATEST), (P, LATEST), 0),
        (labels(enforce=B, warn=R), (B, LATEST), (R, LATEST), (P, LATEST), 0),
        (labels(enforce=B, enforce_version="v1.22"), (B, "v1.22"), (B, "v1.22"), (P, LATEST), 0),
        (labels(enforce=B, enforce_version="v1.22", warn_version=LATEST), (B, "v1.22"), (B, LATEST), (P, LATEST), 0),
        (labels(enforce=B, warn_version="v1.23"), (B, LATEST), (B, "v1.23"), (P, LATEST), 0),
        (labels(enforce=B, warn=P), (B, LATEST), (P, LATEST), (P, LATEST), 0),
        (labels(enforce=B, warn="foo"), (B, LATEST), (P, LATEST), (P, LATEST), 1),
        (labels(enforce="foo"), (R, LATEST), (P, LATEST), (P, LATEST), 1),
        (labels(enforce="Baseline", audit="restricted "), (R, LATEST), (P, LATEST), (P, LATEST), 2),
        (labels(enforce=B, enforce_version="v1.35.0"), (B, LATEST), (B, LATEST), (P, LATEST), 1),
        (labels(audit=R, audit_version="v1.999"), (P, LATEST), (P, LATEST), (R, "v1.999"), 0),
    ],
)
def test_namespace_labels_resolve_as_kubernetes_resolves_them(
    given_labels: dict[str, str], enforce: tuple[str, str], warn: tuple[str, str], audit: tuple[str, str], invalid: int
) -> None:
    policy, errors = namespace_policy(given_labels)
    assert (policy.enforce, policy.warn, policy.audit) == (LevelVersion(*enforce), LevelVersion(*warn),
                                                           LevelVersion(*audit))  # fmt: skip
    assert len(errors) == invalid and all(e.startswith(f"label {PREFIX}") for e in errors)


LABEL_KEYS = [PREFIX + mode + suffix for mode in ("enforce", "warn", "audit") for suffix in ("", "-version")]
LABEL_VALUES = st.text(max_size=8) | st.sampled_from(["baseline", "restricted", "v1.3", "latest"])


@given(st.dictionaries(st.sampled_from(LABEL_KEYS), LABEL_VALUES))
def test_an_enforce_label_that_is_present_never_resolves_to_less_than_its_own_level_or_to_privileged_when_invalid(
    given_labels: dict[str, str],
) -> None:
    policy, _ = namespace_policy(given_labels)
    enforce = given_labels.get(PREFIX + "enforce")
    if enforce is not None:
        assert policy.enforce.level == (enforce if enforce in (P, B, R) else R)
    assert all(0 <= policy.mode(m).minor <= pss.LATEST for m in ("enforce", "warn", "audit"))


def test_the_hack_a_node_pod_is_denied_under_enforce_baseline_naming_the_controls() -> None:
    verdict = pod_security(HACK_A_NODE, labels(enforce=B), namespace="shop")
    assert not verdict.allowed
    assert controls(verdict.enforce) == {"Host Namespaces", "Privileged Containers"}
    assert all(f.enforced and f.policy == f"{PREFIX}enforce=baseline:latest" for f in verdict.enforce)
    assert verdict.warn == () and verdict.audit == ()  # Kubernetes warns only about what it admits


def test_findings_are_the_pss_packs_own_for_the_same_level_and_version() -> None:
    verdict = pod_security(HACK_A_NODE, labels(enforce=R, enforce_version="v1.30"), namespace="shop")
    hits = pss.pack("restricted", "v1.30")(HACK_A_NODE, Context())
    assert [(f.code, f.control, f.level, f.severity, f.message, f.path, f.fix) for f in verdict.enforce] == [
        (h.code, h.control, h.level, h.severity, h.message, h.path, h.fix) for h in hits
    ]


def test_a_namespace_without_labels_admits_everything_silently() -> None:
    assert pod_security(HACK_A_NODE, {}, namespace="shop") == pod_security(PLAIN_POD, {}, namespace="shop")
    assert pod_security(HACK_A_NODE, {}, namespace="shop").allowed


def test_the_operators_defaults_apply_where_a_namespace_has_no_label() -> None:
    defaults = NamespacePolicy(enforce=LevelVersion(B, LATEST))
    assert not pod_security(HACK_A_NODE, {}, namespace="shop", defaults=defaults).allowed
    assert pod_security(HACK_A_NODE, labels(enforce=P), namespace="shop", defaults=defaults).allowed


def test_an_admitted_pod_gets_warnings_and_audit_at_their_own_levels() -> None:
    verdict = pod_security(PLAIN_POD, labels(enforce=B, warn=R, audit=R, audit_version="v1.21"), namespace="shop")
    assert verdict.allowed
    assert "Seccomp" in controls(verdict.warn) and "Capabilities" in controls(verdict.warn)
    assert "Capabilities" not in controls(verdict.audit)  # restricted Capabilities came in 1.22
    assert not any(f.enforced for f in verdict.warn + verdict.audit)


def test_an_invalid_enforce_label_enforces_restricted_and_reports_the_label() -> None:
    verdict = pod_security(PLAIN_POD, labels(enforce="Baseline"), namespace="shop")
    assert not verdict.allowed and verdict.policy.enforce.level == R
    assert verdict.errors == (f"label {PREFIX}enforce='Baseline' must be one of privileged, baseline, restricted",)


def test_the_enforce_version_label_chooses_the_release_and_a_newer_one_means_the_newest() -> None:
    probe = copy.deepcopy(PLAIN_POD)
    probe["spec"]["containers"][0]["livenessProbe"] = {"tcpSocket": {"host": "10.0.0.1", "port": 22}}
    assert pod_security(probe, labels(enforce=B, enforce_version="v1.33"), namespace="shop").allowed
    assert not pod_security(probe, labels(enforce=B), namespace="shop").allowed
    assert not pod_security(probe, labels(enforce=B, enforce_version="v1.999"), namespace="shop").allowed


def test_on_a_cluster_with_its_own_pod_security_newer_versions_are_evaluated_as_its_release() -> None:
    # kubernetes/pod-security-admission policy/check_hostProbesAndhostLifecycle_test.go: emulating 1.33, latest
    # and v1.34 both admit a probe aimed at a host
    probe = copy.deepcopy(PLAIN_POD)
    probe["spec"]["containers"][0]["startupProbe"] = {"httpGet": {"host": "localhost", "port": 80}}
    for version in ("latest", "v1.34"):
        given_labels = labels(enforce=B, enforce_version=version)
        assert pod_security(probe, given_labels, namespace="shop", kubernetes_minor=33).allowed
        assert not pod_security(probe, given_labels, namespace="shop", kubernetes_minor=34).allowed
        assert not pod_security(probe, given_labels, namespace="shop").allowed


def test_a_workload_template_is_warned_and_audited_but_never_enforced() -> None:
    verdict = pod_security(PLAIN_DEPLOYMENT, labels(enforce=B, audit=B), namespace="shop")
    assert verdict.allowed and verdict.enforce == ()
    assert controls(verdict.warn) == controls(verdict.audit) == {"Host Namespaces"}
    assert verdict.warn[0].path == "spec.template.spec.hostNetwork"


@pytest.mark.parametrize(
    ("api_version", "kind", "checked"),
    [("apps/v1", "DaemonSet", True), ("batch/v1", "Job", True), ("v1", "ReplicationController", True),
     ("example.com/v1", "Deployment", False), ("v1", "Service", False)],
)  # fmt: skip
def test_only_the_kubernetes_kinds_with_a_pod_template_are_checked(api_version: str, kind: str, checked: bool) -> None:
    body = {**copy.deepcopy(PLAIN_DEPLOYMENT), "apiVersion": api_version, "kind": kind}
    assert bool(pod_security(body, labels(warn=B), namespace="shop").warn) == checked


def test_a_pod_template_object_is_checked() -> None:
    template = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"},
                "template": {"spec": copy.deepcopy(HACK_A_NODE["spec"])}}  # fmt: skip
    assert controls(pod_security(template, labels(enforce=B), namespace="shop").warn) == {
        "Host Namespaces", "Privileged Containers"}  # fmt: skip


@pytest.mark.parametrize(
    "subresource", ["exec", "attach", "binding", "eviction", "log", "portforward", "proxy", "status"]
)
def test_pod_subresources_kubernetes_ignores_are_not_checked(subresource: str) -> None:
    verdict = pod_security(HACK_A_NODE, labels(enforce=B), namespace="shop", subresource=subresource)
    assert verdict.allowed and verdict.warn == ()


def test_adding_an_ephemeral_container_through_its_subresource_is_enforced() -> None:
    debug = copy.deepcopy(PLAIN_POD)
    debug["spec"]["ephemeralContainers"] = [
        {"name": "dbg", "image": "busybox", "securityContext": {"privileged": True}}
    ]
    verdict = pod_security(debug, labels(enforce=B), namespace="shop", operation="UPDATE", old=PLAIN_POD,
                           subresource="ephemeralcontainers")  # fmt: skip
    assert controls(verdict.enforce) == {"Privileged Containers"}


def test_a_workload_subresource_such_as_scale_is_not_checked() -> None:
    assert pod_security(PLAIN_DEPLOYMENT, labels(warn=B), namespace="shop", subresource="scale").warn == ()


def test_a_pod_update_that_changes_no_image_is_not_checked_and_one_that_does_is() -> None:
    relabelled = copy.deepcopy(HACK_A_NODE)
    relabelled["metadata"]["labels"] = {"touched": "yes"}
    update: dict[str, Any] = {"namespace": "shop", "operation": "UPDATE", "old": HACK_A_NODE}
    assert pod_security(relabelled, labels(enforce=B), **update).allowed
    relabelled["spec"]["containers"][0]["image"] = "alpine:3.20"
    assert not pod_security(relabelled, labels(enforce=B), **update).allowed


def test_a_pod_update_without_the_old_object_is_checked() -> None:
    assert not pod_security(HACK_A_NODE, labels(enforce=B), namespace="shop", operation="UPDATE").allowed


@pytest.mark.parametrize("operation", ["DELETE", "CONNECT"])
def test_delete_and_connect_are_not_checked(operation: str) -> None:
    assert pod_security(HACK_A_NODE, labels(enforce=B), namespace="shop", operation=operation).allowed


@pytest.mark.parametrize(
    ("exemptions", "why"),
    [(Exemptions(usernames=frozenset({"system:serviceaccount:ops:breakglass"})), "user"),
     (Exemptions(namespaces=frozenset({"shop"})), "namespace"),
     (Exemptions(runtime_classes=frozenset({"kata"})), "runtimeClass")],
)  # fmt: skip
def test_exempt_users_namespaces_and_runtime_classes_are_admitted(exemptions: Exemptions, why: str) -> None:
    pod = copy.deepcopy(HACK_A_NODE)
    pod["spec"]["runtimeClassName"] = "kata"
    verdict = pod_security(pod, labels(enforce=B, warn=R, audit=R), namespace="shop",
                           username="system:serviceaccount:ops:breakglass", exemptions=exemptions)  # fmt: skip
    assert (verdict.allowed, verdict.warn, verdict.audit, verdict.exempt) == (True, (), (), why)


def test_an_exemption_for_another_user_or_runtime_class_does_not_apply() -> None:
    exemptions = Exemptions(usernames=frozenset({"root"}), runtime_classes=frozenset({"kata"}))
    verdict = pod_security(HACK_A_NODE, labels(enforce=B), namespace="shop", username="alice", exemptions=exemptions)
    assert not verdict.allowed and verdict.exempt == ""


def _namespace(**given: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": labels(**given)}}


def test_a_namespace_with_an_invalid_label_is_refused_on_create_naming_the_label() -> None:
    verdict = pod_security(_namespace(enforce="baseline", warn_version="1.30"), {}, namespace="shop")
    (refused,) = verdict.enforce
    assert refused.message.startswith(f"Namespace/shop: label {PREFIX}warn-version='1.30' must be")
    assert refused.path == f"metadata.labels[{PREFIX}warn-version]"


def test_a_namespace_update_keeping_the_same_invalid_label_is_admitted_and_a_new_one_is_refused() -> None:
    old = _namespace(enforce="bogus")
    update: dict[str, Any] = {"namespace": "shop", "operation": "UPDATE", "old": old}
    assert pod_security(_namespace(enforce="bogus"), {}, **update).allowed
    assert not pod_security(_namespace(enforce="bogus2"), {}, **update).allowed


def test_tightening_enforce_warns_about_each_existing_pod_it_would_refuse() -> None:
    update: dict[str, Any] = {"namespace": "shop", "operation": "UPDATE", "old": _namespace(enforce=P)}
    verdict = pod_security(_namespace(enforce=B), {}, existing_pods=[HACK_A_NODE, PLAIN_POD], **update)
    (warning,) = verdict.warn
    assert verdict.allowed and "existing pod 'my-pod' violates" in warning.message
    assert pod_security(_namespace(enforce=P), {}, existing_pods=[HACK_A_NODE], **update).warn == ()


# kubernetes/pod-security-admission admission/admission_test.go TestValidateNamespace (facts): (case, new labels,
# old labels or None for a create, default enforce level, refused, existing pods evaluated, exempt warning)
NAMESPACE_CASES = [
    ("create privileged", labels(enforce=P, enforce_version="v1.0"), None, P, False, False, ""),
    ("create restricted", labels(enforce=R), None, P, False, False, ""),
    ("create malformed level", labels(enforce="unknown"), None, P, True, False, ""),
    ("create malformed version", labels(enforce=P, enforce_version="unknown"), None, P, True, False, ""),
    ("update no-op", labels(enforce=R, enforce_version="v1.0"), labels(enforce=R, enforce_version="v1.0"), P, False,
     False, ""),
    ("update no-op malformed level", labels(enforce="unknown"), labels(enforce="unknown"), P, False, False, ""),
    ("update no-op malformed version", labels(enforce=B, enforce_version="unknown"),
     labels(enforce=B, enforce_version="unknown"), P, False, False, ""),
    ("update relax level identical version", labels(enforce=B, enforce_version="v1.0"),
     labels(enforce=R, enforce_version="v1.0"), P, False, False, ""),
    ("update relax level explicit latest", labels(enforce=B, enforce_version=LATEST),
     labels(enforce=R, enforce_version=LATEST), P, False, False, ""),
    ("update relax level implicit latest", labels(enforce=B), labels(enforce=R), P, False, False, ""),
    ("update to explicit privileged", labels(enforce=P), labels(enforce=R, enforce_version="v1.0"), P, False, False,
     ""),
    ("update to implicit privileged", {}, labels(enforce=R, enforce_version="v1.0"), P, False, False, ""),
    ("update malformed level", labels(enforce="unknown"), labels(enforce=R, enforce_version="v1.0"), P, True, False,
     ""),
    ("update malformed version", labels(enforce=P, enforce_version="unknown"),
     labels(enforce=R, enforce_version="v1.0"), P, True, False, ""),
    ("update to implicit restricted", {}, labels(enforce=B, enforce_version="v1.0"), R, False, True, ""),
    ("update exempt to restricted", labels(enforce=R, enforce_version="v1.0", audit=R, warn=B), {}, P, False, False,
     'namespace "test" is exempt from Pod Security, and the policy (enforce=restricted:v1.0, '
     "audit=restricted:latest, warn=baseline:latest) will be ignored"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "new", "old", "default", "refused", "evaluated", "exempt_warning"), NAMESPACE_CASES,
                         ids=[c[0] for c in NAMESPACE_CASES])  # fmt: skip
def test_namespace_requests_are_decided_as_kubernetes_decides_them(
    case: str, new: dict[str, str], old: dict[str, str] | None, default: str, refused: bool, evaluated: bool,
    exempt_warning: str,
) -> None:  # fmt: skip
    def namespace(given: dict[str, str]) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "test", "labels": given}}

    verdict = pod_security(
        namespace(new), {}, namespace="test", operation="CREATE" if old is None else "UPDATE",
        old=None if old is None else namespace(old), existing_pods=[HACK_A_NODE],
        defaults=NamespacePolicy(enforce=LevelVersion(default, LATEST)),
        exemptions=Exemptions(namespaces=frozenset({"test"} if exempt_warning else set())),
    )  # fmt: skip
    assert verdict.allowed != refused
    assert any("existing pod" in f.message for f in verdict.warn) == evaluated
    assert [f.message.partition(": ")[2] for f in verdict.warn if "exempt" in f.message] == (
        [exempt_warning] if exempt_warning else []
    )


def test_labelling_an_exempt_namespace_warns_that_its_policy_is_ignored() -> None:
    verdict = pod_security(
        _namespace(enforce=B), {}, namespace="shop", exemptions=Exemptions(namespaces=frozenset({"shop"}))
    )
    (warning,) = verdict.warn
    assert verdict.allowed and "is exempt from Pod Security, and the policy (enforce=baseline:latest" in warning.message


FIELDS = ["containers", "initContainers", "ephemeralContainers", "securityContext", "seLinuxOptions", "type",
          "capabilities", "add", "drop", "volumes", "hostPath", "ports", "hostPort", "livenessProbe", "httpGet",
          "host", "lifecycle", "preStop", "sysctls", "name", "image", "runtimeClassName", "hostUsers", "os",
          "procMount", "seccompProfile", "appArmorProfile", "runAsUser", "windowsOptions", "hostProcess"]  # fmt: skip
SHAPES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.sampled_from(["Unconfined", "ALL"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(FIELDS), inner, max_size=4),
    max_leaves=25,
)


@given(SHAPES, SHAPES)
@example({"securityContext": {"seLinuxOptions": "spc_t"}}, None)  # a string where a map belongs
@example({"containers": 5}, {"containers": []})
def test_no_pod_shape_makes_the_decision_raise_and_what_cannot_be_read_is_refused(spec: Any, old_spec: Any) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}
    old = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": old_spec}
    for operation in ("CREATE", "UPDATE"):
        verdict = pod_security(pod, labels(enforce=B, warn=R, audit=R), namespace="shop", operation=operation, old=old)
        assert all(f.enforced for f in verdict.enforce) and not any(f.enforced for f in verdict.warn + verdict.audit)
        assert pod_security(pod, {}, namespace="shop", operation=operation, old=old).allowed
