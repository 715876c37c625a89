"""The general rules behind judging a child through its controller: only a kind that really controls the
child's kind counts as its controller, and a child counts as its controller's only for the findings its
controller's template would produce."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.policy import judge_object, parse_policies
from gitopsguard.policy.model import Context
from gitopsguard.scan.template import beyond_controller
from gitopsguard.scan.trust import CONTROLLERS, controller_reference

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
KINDS = [("v1", "Pod"), ("apps/v1", "ReplicaSet"), ("batch/v1", "Job"), ("apps/v1", "Deployment"),
         ("apps/v1", "StatefulSet"), ("apps/v1", "DaemonSet"), ("v1", "ReplicationController"),
         ("batch/v1", "CronJob"), ("v1", "ConfigMap"), ("v1", "Secret"), ("example.com/v1", "ReplicaSet"),
         ("apps/v1beta2", "ReplicaSet"), ("v1", "Service")]  # fmt: skip
BASELINE = parse_policies(
    {
        "p.yaml": """\
apiVersion: gitopsguard.io/v1alpha1
kind: Policy
metadata: {name: baseline}
spec:
  builtin: {name: pss-baseline}
"""
    }
)


def _group_kind(api_version: str, kind: str) -> tuple[str, str]:
    return api_version.rpartition("/")[0], kind


@given(st.sampled_from(KINDS), st.sampled_from(KINDS), st.booleans())
@example(("v1", "Pod"), ("apps/v1", "Deployment"), True)  # a tenant's own Deployment: hid a privileged Pod
@example(("v1", "Pod"), ("v1", "ConfigMap"), True)  # held a privileged Pod forever
def test_only_a_kind_that_really_controls_the_childs_kind_counts_as_its_controller(
    child: tuple[str, str], owner: tuple[str, str], controller: bool
) -> None:
    ref = {"apiVersion": owner[0], "kind": owner[1], "name": "o", "uid": "u", "controller": controller}
    body = {"apiVersion": child[0], "kind": child[1], "metadata": {"name": "c", "ownerReferences": [ref]}}
    counts = controller and _group_kind(*owner) in CONTROLLERS.get(_group_kind(*child), frozenset())
    assert (controller_reference(body) is not None) == counts


@given(st.sampled_from([None, [], "x", [1, None], {"a": 1}, [{"controller": "true"}]]))
def test_odd_owner_references_name_no_controller(owners: Any) -> None:
    assert controller_reference({"apiVersion": "v1", "kind": "Pod", "metadata": {"ownerReferences": owners}}) is None


SECURITY = st.fixed_dictionaries({}, optional={
    "privileged": st.booleans(), "allowPrivilegeEscalation": st.booleans(),
    "capabilities": st.fixed_dictionaries({"add": st.lists(st.sampled_from(["NET_ADMIN", "SYS_ADMIN", "CHOWN"]))}),
})  # fmt: skip
POD_SPECS = st.builds(
    lambda sc, host, extra: {"hostNetwork": host, "containers": [{"name": "c", "image": "x:1", "securityContext": sc},
                                                                *extra]},
    SECURITY, st.booleans(), st.lists(st.builds(lambda sc: {"name": "side", "image": "y:1", "securityContext": sc},
                                                SECURITY), max_size=1),
)  # fmt: skip
OWNERS = st.sampled_from(["ReplicaSet", "StatefulSet", "DaemonSet", "Job", "ReplicationController"])


def _findings(body: dict[str, Any]) -> tuple[Any, ...]:
    return judge_object(body, BASELINE, Context(None), NOW)[0]


def _owner(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    template = {"metadata": {"labels": {"app": "a"}}, "spec": spec}
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "o", "namespace": "t"},
            "spec": {"template": template}}  # fmt: skip


def _pod(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "o-1", "namespace": "t"}, "spec": spec}


@given(OWNERS, POD_SPECS)
def test_a_pod_made_from_its_controllers_template_has_no_finding_beyond_it(kind: str, spec: dict[str, Any]) -> None:
    pod = _pod(spec)
    owner = _owner(kind, spec)
    assert beyond_controller(pod, _findings(pod), owner, _findings(owner)) == ()


@given(OWNERS, POD_SPECS)
@example("DaemonSet", {"containers": [{"name": "c", "image": "x:1"}]})  # the compliant DaemonSet of a tenant
def test_a_pod_privileged_beyond_its_controllers_template_has_findings_beyond_it(
    kind: str, spec: dict[str, Any]
) -> None:
    escalated = {**spec, "hostPID": True, "containers": [{**c, "securityContext": {"privileged": True}}
                                                          for c in spec["containers"]]}  # fmt: skip
    pod = _pod(escalated)
    owner = _owner(kind, spec)
    extra = beyond_controller(pod, _findings(pod), owner, _findings(owner))
    assert any(f.path.endswith("hostPID") for f in extra)


def test_a_replicaset_is_compared_with_its_deployments_template_and_a_job_with_its_cronjobs() -> None:
    spec = {"containers": [{"name": "c", "image": "x:1"}]}
    deployment = {**_owner("Deployment", spec), "apiVersion": "apps/v1"}
    replica_set = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "o-5d", "namespace": "t"},
                   "spec": {"template": {"spec": {**spec, "hostIPC": True}}}}  # fmt: skip
    (extra,) = beyond_controller(replica_set, _findings(replica_set), deployment, _findings(deployment))
    assert extra.path == "spec.template.spec.hostIPC"
    cron = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "o"},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}}  # fmt: skip
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "o-1", "namespace": "t"},
           "spec": {"template": {"spec": spec}}}  # fmt: skip
    assert beyond_controller(job, _findings(job), cron, _findings(cron)) == ()
