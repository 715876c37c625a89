"""A child is excused a finding only when its controller's own judgement has that finding standing, with the
same value and severity, under the same policies' scope: a tenant's Pod naming an excepted or out-of-scope
controller, or mounting more than the controller's template does, is judged on its own."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.policy import PolicySet, judge_object, parse_policies
from gitopsguard.policy.model import Context
from gitopsguard.scan.template import beyond_controller, owner_path

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
BASELINE = """\
apiVersion: gitopsguard.io/v1alpha1
kind: Policy
metadata: {name: baseline}
spec:
  enforcement: enforce
  builtin: {name: pss-baseline}
"""
LOG_AGENT_EXCEPTION = """\
apiVersion: gitopsguard.io/v1alpha1
kind: PolicyException
metadata: {name: log-agent}
spec:
  policies: [baseline]
  match: {kinds: [DaemonSet], names: [log-agent], namespaces: [shop]}
  reason: reads node logs
  expires: 2027-06-01T00:00:00Z
"""
PODS_ONLY = """\
apiVersion: gitopsguard.io/v1alpha1
kind: Policy
metadata: {name: pods}
spec:
  enforcement: enforce
  match: {kinds: [Pod]}
  builtin: {name: pss-baseline}
  live: {action: delete, gracePeriod: 1s}
"""


def _extra(pod: dict[str, Any], owner: dict[str, Any], policies: PolicySet) -> tuple[Any, ...]:
    ctx = Context(None)
    own, owners = judge_object(pod, policies, ctx, NOW)[0], judge_object(owner, policies, ctx, NOW)[0]
    return beyond_controller(pod, own, owner, owners)


def _daemon_set(name: str, spec: dict[str, Any], kind: str = "DaemonSet") -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": "shop", "uid": "u"},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}  # fmt: skip


def _pod(name: str, owner: str, spec: dict[str, Any]) -> dict[str, Any]:
    reference = {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": owner, "uid": "u", "controller": True}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "shop", "labels": {"app": owner},
            "ownerReferences": [reference]}, "spec": spec}  # fmt: skip


def _spec(path: str, caps: list[str], privileged: bool = False) -> dict[str, Any]:
    context: dict[str, Any] = {"capabilities": {"add": caps}}
    if privileged:
        context["privileged"] = True
    return {"containers": [{"name": "a", "image": "agent", "securityContext": context}],
            "volumes": [{"name": "logs", "hostPath": {"path": path}}]}  # fmt: skip


def test_a_pod_mounting_the_node_root_behind_an_excepted_daemonset_is_refused_its_excuse() -> None:
    policies = parse_policies({"p.yaml": BASELINE, "e.yaml": LOG_AGENT_EXCEPTION})
    agent = _daemon_set("log-agent", _spec("/var/log", ["NET_RAW"]))
    evil = _pod("node-root", "log-agent", _spec("/", ["SYS_ADMIN", "SYS_PTRACE"]))
    extra = _extra(evil, agent, policies)
    added = "spec.containers[0].securityContext.capabilities.add"
    assert {f.path for f in extra} == {"spec.volumes[0].hostPath", added}


def test_a_privileged_pod_behind_a_daemonset_no_pod_only_policy_judges_is_refused_its_excuse() -> None:
    policies = parse_policies({"p.yaml": PODS_ONLY})
    spec = _spec("/", [], privileged=True)
    pod = _pod("x-abcde", "x", spec)
    assert any(f.code == "GG1103" for f in _extra(pod, _daemon_set("x", spec), policies))


def test_a_pod_its_controllers_standing_findings_cover_exactly_is_excused() -> None:
    policies = parse_policies({"p.yaml": BASELINE})
    spec = _spec("/var/log", ["NET_RAW"])
    assert _extra(_pod("log-agent-1", "log-agent", spec), _daemon_set("log-agent", spec), policies) == ()


PATHS = st.sampled_from(["/", "/var/log", "/etc", "/var/run/docker.sock", "/var/log/"])
CAPS = st.lists(st.sampled_from(["NET_RAW", "SYS_ADMIN", "SYS_PTRACE", "NET_ADMIN", "CHOWN"]), max_size=3)


OWNER_KINDS = st.sampled_from(["DaemonSet", "ReplicaSet", "StatefulSet", "Job", "ReplicationController"])


@given(PATHS, CAPS, st.booleans(), PATHS, CAPS, st.booleans(), st.booleans(), OWNER_KINDS)
@example("/var/log", ["NET_RAW"], False, "/", ["SYS_ADMIN", "SYS_PTRACE"], False, True, "DaemonSet")  # s1
@example("/", [], True, "/", [], True, False, "DaemonSet")  # s2's spec: excused only where the DaemonSet is judged
def test_a_child_is_excused_only_what_its_controller_has_standing_with_the_same_value(
    owner_path: str, owner_caps: list[str], owner_priv: bool, path: str, caps: list[str], priv: bool, excepted: bool,
    kind: str,
) -> None:  # fmt: skip
    policies = parse_policies({"p.yaml": BASELINE, **({"e.yaml": LOG_AGENT_EXCEPTION} if excepted else {})})
    owner = _daemon_set("log-agent", _spec(owner_path, owner_caps, owner_priv), kind)
    pod = _pod("log-agent-1", "log-agent", _spec(path, caps, priv))
    own = judge_object(pod, policies, Context(None), NOW)[0]
    extra = _extra(pod, owner, policies)
    standing = judge_object(owner, policies, Context(None), NOW)[0]
    for finding in own:
        twin = [o for o in standing if (o.policy, o.code, o.message, o.severity) ==
                (finding.policy, finding.code, finding.message, finding.severity)
                and o.path == "spec.template." + finding.path]  # fmt: skip
        same_value = bool(twin) and _value(pod, finding.path) == _value(owner, "spec.template." + finding.path)
        assert (finding in extra) == (not same_value), finding


def _value(body: dict[str, Any], path: str) -> Any:
    node: Any = body
    for part in path.replace("[", ".").replace("]", "").split("."):
        node = node[int(part)] if isinstance(node, list) else (node or {}).get(part)
    return node


def test_a_finding_of_a_pod_only_policy_is_never_excused_by_a_controller_kind() -> None:
    policies = parse_policies({"p.yaml": PODS_ONLY})
    spec = _spec("/var/log", ["NET_RAW"])
    pod = _pod("log-agent-1", "log-agent", spec)
    own = judge_object(pod, policies, Context(None), NOW)[0]
    assert own and _extra(pod, _daemon_set("log-agent", spec), policies) == own


def test_a_childs_field_is_looked_up_where_its_controller_keeps_it_and_nowhere_else() -> None:
    assert owner_path("Pod", "DaemonSet", "spec.hostPID") == "spec.template.spec.hostPID"
    assert owner_path("Pod", "ReplicaSet", "metadata.labels") == "spec.template.metadata.labels"
    assert owner_path("ReplicaSet", "Deployment", "spec.template.spec.hostIPC") == "spec.template.spec.hostIPC"
    assert owner_path("Job", "CronJob", "spec.template.spec.hostIPC") == "spec.jobTemplate.spec.template.spec.hostIPC"
    assert owner_path("Job", "CronJob", "spec.backoffLimit") == "spec.jobTemplate.spec.backoffLimit"
    assert owner_path("StatefulSet", "DaemonSet", "spec.replicas") is None  # no template keeps it
    assert owner_path("Pod", "ConfigMap", "spec.hostPID") is None


def test_a_label_with_dots_in_its_key_is_compared_by_its_value() -> None:
    spec = _spec("/var/log", [])
    owner = _daemon_set("a", spec)
    owner["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] = "agent"
    pod = _pod("a-1", "a", spec)
    pod["metadata"]["labels"]["app.kubernetes.io/name"] = "evil"
    finding = judge_object(pod, parse_policies({"p.yaml": BASELINE}), Context(None), NOW)[0][0]
    label = replace(finding, path="metadata.labels.app.kubernetes.io/name")
    twin = replace(label, path="spec.template." + label.path)
    assert beyond_controller(pod, [label], owner, [twin]) == (label,)
    pod["metadata"]["labels"]["app.kubernetes.io/name"] = "agent"
    assert beyond_controller(pod, [label], owner, [twin]) == ()
