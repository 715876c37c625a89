"""The five seed policies of repo-template/policies/ (issue 16: the Kyverno/PSS seed's policies, written as
gitopsguard policies), as the gate applies them and as the webhooks answer: the mutations as the JSON Patch
the mutating webhook returns, the validations as the validating webhook's verdict. One evaluator, so the gate
and admission say the same; the integration tests show the same on the real API server."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.admission import Judgement, mutate_request, validate
from gitopsguard.admission.patch import mutations
from gitopsguard.errors import PolicyError
from gitopsguard.model import KubeObject
from gitopsguard.policy import DenyLevel, evaluate, load_policies, parse_policies
from gitopsguard.policy.podsecurity import namespace_policy
from gitopsguard.render.plain import read_text
from tests.admissionreview import request_of
from tests.unit.policy.workloads import as_cronjob, as_deployment, as_pod, compliant_spec

TEMPLATE = Path(__file__).parents[2] / "repo-template"
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
POLICIES = load_policies(TEMPLATE / "policies", root=TEMPLATE)
JUDGEMENT = Judgement(POLICIES, DenyLevel.LOW, "template")
ENFORCE = "pod-security.kubernetes.io/enforce"
SEEDS = ("mutate-pss-labels", "validate-pss-labels", "add-ttl-jobs", "require-requests-limits", "spread-pods")


def _namespace(labels: dict[str, str] | None = None) -> KubeObject:
    metadata: dict[str, Any] = {"name": "team"}
    if labels is not None:
        metadata["labels"] = labels
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}


def _patch(body: KubeObject, **options: Any) -> list[dict[str, Any]]:
    verdict = mutate_request(request_of(body, **options), JUDGEMENT)
    assert verdict.allowed
    return list(verdict.patch)


def _seed_ops(patch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The operations other than the template's managed-by label (policies/defaults.yaml)."""
    return [op for op in patch if "managed-by" not in op["path"] and "managed-by" not in str(op.get("value"))]


def test_the_template_ships_the_five_seed_policies_each_naming_where_its_idea_comes_from() -> None:
    assert set(SEEDS) <= {p.name for p in POLICIES.policies}
    for name in SEEDS:
        text = (TEMPLATE / "policies" / f"{name}.yaml").read_text()
        assert "Kyverno/PSS seed" in text and "written anew" in text, name


# mutate-pss-labels


def test_a_new_namespace_without_an_enforce_label_gets_restricted_as_a_json_patch() -> None:
    assert _patch(_namespace()) == [  # defaults.yaml, then mutate-pss-labels.yaml: the gate's order
        {"op": "add", "path": "/metadata/labels", "value": {"app.kubernetes.io/managed-by": "gitopsguard"}},
        {"op": "add", "path": "/metadata/labels/pod-security.kubernetes.io~1enforce", "value": "restricted"},
    ]
    assert _seed_ops(_patch(_namespace({"team": "a"}))) == [
        {"op": "add", "path": "/metadata/labels/pod-security.kubernetes.io~1enforce", "value": "restricted"}
    ]


@pytest.mark.parametrize("level", ["baseline", "restricted", "privileged"])
def test_a_namespace_that_names_its_enforce_level_keeps_it(level: str) -> None:
    assert _seed_ops(_patch(_namespace({ENFORCE: level}))) == []


def test_removing_the_enforce_label_puts_restricted_back_at_the_update() -> None:
    old = _namespace({ENFORCE: "baseline", "team": "a"})
    patch = _patch(_namespace({"team": "a"}), operation="UPDATE", old=old)
    assert {"op": "add", "path": "/metadata/labels/pod-security.kubernetes.io~1enforce", "value": "restricted"} in patch


def test_the_gate_applies_the_template_namespaces_with_enforce_restricted() -> None:
    manifests = read_text(yaml.safe_dump_all([_namespace({"team": "a"})]), "ns.yaml")
    (mutated,) = evaluate(manifests, POLICIES, now=NOW, deny_level=DenyLevel.LOW).manifests
    assert mutated.body["metadata"]["labels"][ENFORCE] == "restricted"


# validate-pss-labels


def test_a_namespace_labelled_enforce_privileged_is_denied_at_admission_and_at_the_gate() -> None:
    namespace = _namespace({ENFORCE: "privileged"})
    verdict = validate(request_of(namespace), JUDGEMENT, now=NOW, namespace=None)
    assert not verdict.allowed
    assert [(f.policy, f.code) for f in verdict.denying] == [("validate-pss-labels", "GG3003")]
    assert verdict.denying[0].path == f"metadata.labels.{ENFORCE}"
    manifests = read_text(yaml.safe_dump_all([namespace]), "ns.yaml")
    assert evaluate(manifests, POLICIES, now=NOW, deny_level=DenyLevel.LOW).blocked


def test_a_downgrade_to_privileged_by_label_update_is_denied() -> None:
    old = _namespace({ENFORCE: "restricted"})
    verdict = validate(request_of(_namespace({ENFORCE: "privileged"}), operation="UPDATE", old=old), JUDGEMENT,
                       now=NOW, namespace=None)  # fmt: skip
    assert not verdict.allowed


@pytest.mark.parametrize("labels", [None, {}, {ENFORCE: "baseline"}, {ENFORCE: "restricted"}, {"team": "a"}])
def test_a_namespace_at_baseline_or_restricted_or_unlabelled_is_admitted(labels: dict[str, str] | None) -> None:
    assert validate(request_of(_namespace(labels)), JUDGEMENT, now=NOW, namespace=None).allowed


@pytest.mark.parametrize("value", ["Privileged", "PRIVILEGED", "privileged-please", ""])
def test_a_look_alike_of_privileged_is_no_downgrade_pod_security_enforces_it_as_restricted(value: str) -> None:
    # The policy refuses only the exact value; Pod Security reads any other invalid value as restricted.
    policy, errors = namespace_policy({ENFORCE: value})
    assert policy.enforce.level == "restricted" and errors


def test_an_exception_lets_a_named_namespace_run_privileged_until_it_expires() -> None:
    exception = """apiVersion: gitopsguard.io/v1alpha1
kind: PolicyException
metadata: {name: node-agent}
spec:
  policies: [validate-pss-labels]
  match: {kinds: [Namespace], names: [team]}
  reason: the node agent needs host access (OPS-7)
  expires: 2026-12-31T00:00:00Z
"""
    texts = {f"policies/{p.name}": p.read_text() for p in (TEMPLATE / "policies").glob("*.yaml")}
    judgement = Judgement(parse_policies({**texts, "policies/exceptions/agent.yaml": exception}), DenyLevel.LOW)
    request = request_of(_namespace({ENFORCE: "privileged"}))
    assert validate(request, judgement, now=NOW, namespace=None).allowed
    assert not validate(request, judgement, now=datetime(2026, 12, 31, tzinfo=UTC), namespace=None).allowed


# add-ttl-jobs


def _job(**spec: Any) -> KubeObject:
    template = {"metadata": {"labels": {"team": "a"}}, "spec": {"restartPolicy": "Never", **compliant_spec()}}
    metadata = {"name": "j", "namespace": "team", "labels": {"app.kubernetes.io/managed-by": "gitopsguard"}}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": {"template": template, **spec}}


def test_a_job_without_ttl_gets_90_seconds_as_a_json_patch() -> None:
    assert _patch(_job(), namespace="team") == [{"op": "add", "path": "/spec/ttlSecondsAfterFinished", "value": 90}]


def test_the_gate_applies_a_job_without_ttl_with_90_seconds() -> None:
    manifests = read_text(yaml.safe_dump_all([_job()]), "job.yaml")
    (mutated,) = evaluate(manifests, POLICIES, now=NOW, deny_level=DenyLevel.LOW).manifests
    assert mutated.body["spec"]["ttlSecondsAfterFinished"] == 90


@pytest.mark.parametrize("ttl", [0, 5, 86_400])
def test_a_job_that_sets_its_ttl_keeps_it_even_zero(ttl: int) -> None:
    assert _patch(_job(ttlSecondsAfterFinished=ttl), namespace="team") == []


def test_a_null_ttl_is_replaced_by_90() -> None:
    patch = _patch(_job(ttlSecondsAfterFinished=None), namespace="team")
    assert patch == [{"op": "replace", "path": "/spec/ttlSecondsAfterFinished", "value": 90}]


def test_only_add_ttl_jobs_sets_a_job_ttl_in_the_template() -> None:
    setters = [p.name for p in POLICIES.policies if p.mutation is not None
               and any("ttlSecondsAfterFinished" in path for _, path, _ in p.mutation.defaults)]  # fmt: skip
    assert setters == ["add-ttl-jobs"]


# require-requests-limits


def _without(spec: dict[str, Any], *where: str) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    for item in where:
        kind, resource = item.split(".")
        del spec["containers"][0]["resources"][kind][resource]
    return spec


def _resource_findings(body: KubeObject) -> list[Any]:
    verdict = validate(request_of(body), JUDGEMENT, now=NOW, namespace=None)
    assert not [f for f in verdict.denying if f.policy == "require-requests-limits"]
    return [f for f in verdict.warning if f.policy == "require-requests-limits"]


@pytest.mark.parametrize("missing", ["requests.cpu", "requests.memory", "limits.cpu", "limits.memory"])
@pytest.mark.parametrize("wrap", [as_pod, as_deployment, as_cronjob])
def test_a_container_missing_a_cpu_or_memory_request_or_limit_is_warned_never_denied(missing: str, wrap: Any) -> None:
    found = _resource_findings(wrap(_without(compliant_spec(), missing)))
    assert [(f.code, f.enforced, f.message) for f in found] == [
        ("GG3004", False, "every container needs resources.requests and resources.limits for cpu and memory")
    ]


def test_a_container_without_resources_at_all_is_warned_and_a_complete_one_is_not() -> None:
    bare = compliant_spec()
    del bare["containers"][0]["resources"]
    assert len(_resource_findings(as_pod(bare))) == 1
    assert _resource_findings(as_pod(compliant_spec())) == []


def test_an_init_container_without_limits_is_warned_too() -> None:
    spec = compliant_spec()
    init = {"name": "init", "image": "registry.example/i:1", "resources": {"requests": {"cpu": "1"}}}
    spec["initContainers"] = [init]
    assert [f.path for f in _resource_findings(as_pod(spec))] == ["initContainers[*].resources"]


def test_a_pod_of_an_odd_shape_is_warned_about_never_an_exception() -> None:
    pod = as_pod(compliant_spec())
    pod["spec"]["containers"] = "not a list"
    found = _resource_findings(pod)
    assert found and all(not f.enforced for f in found)


def test_missing_limits_at_the_gate_are_reported_but_never_block() -> None:
    manifests = read_text(yaml.safe_dump_all([as_deployment(_without(compliant_spec(), "limits.cpu"))]), "d.yaml")
    result = evaluate(manifests, POLICIES, now=NOW, deny_level=DenyLevel.HIGH)
    codes = [(f.code, f.enforced) for r in result.results for f in r.findings if f.policy == "require-requests-limits"]
    assert codes == [("GG3004", False)]


# spread-pods


def _deployment(**spec: Any) -> KubeObject:
    body = as_deployment(compliant_spec())
    body["metadata"]["labels"] = {"app.kubernetes.io/managed-by": "gitopsguard"}
    body["spec"].update(spec)
    return body


def test_a_deployment_without_spread_constraints_gets_one_selecting_its_own_pods() -> None:
    selector = {"matchLabels": {"app": "a"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["x"]}]}
    body = _deployment(selector=selector)
    assert _patch(body, namespace="team") == [{
        "op": "add", "path": "/spec/template/spec/topologySpreadConstraints",
        "value": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
                   "labelSelector": selector}],
    }]  # fmt: skip


def test_the_spread_constraint_is_a_copy_the_deployments_selector_is_never_shared_or_changed() -> None:
    manifests = read_text(yaml.safe_dump_all([_deployment(selector={"matchLabels": {"app": "a"}})]), "d.yaml")
    (mutated,) = evaluate(manifests, POLICIES, now=NOW, deny_level=DenyLevel.LOW).manifests
    (constraint,) = mutated.body["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert constraint["labelSelector"] == mutated.body["spec"]["selector"]
    assert constraint["labelSelector"] is not mutated.body["spec"]["selector"]
    assert "topologySpreadConstraints" not in manifests[0].body["spec"]["template"]["spec"]


OWN_SPREAD = {"maxSkew": 2, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"}


@pytest.mark.parametrize("existing", [[], [OWN_SPREAD]])
def test_a_deployment_with_its_own_spread_constraints_keeps_them(existing: list[Any]) -> None:
    body = _deployment()
    body["spec"]["template"]["spec"]["topologySpreadConstraints"] = existing
    assert _patch(body, namespace="team") == []


def test_a_deployment_without_a_selector_gets_no_constraint_that_would_select_nothing() -> None:
    body = _deployment()
    del body["spec"]["selector"]
    assert _patch(body, namespace="team") == []


# the $copy form in a policy's setDefaults (the one extension of the policy language these needed)

COPYING = """apiVersion: gitopsguard.io/v1alpha1
kind: Policy
metadata: {name: p}
spec:
  mutate:
    setDefaults:
      - path: spec.x
        value: %s
"""


@pytest.mark.parametrize("value", ["{$copy: spec.selector, other: 1}", "{$copy: ''}", "{$copy: 3}", "{$copy: a..b}",
                                   "[{$copy: [spec]}]"])  # fmt: skip
def test_a_copy_that_names_no_field_is_refused_with_its_file_and_line(value: str) -> None:
    with pytest.raises(PolicyError, match=r"^policies/p.yaml:\d+: `\$copy` stands alone"):
        parse_policies({"policies/p.yaml": COPYING % value})


def test_a_default_copies_the_field_anywhere_in_its_value_and_a_copy_of_nothing_sets_nothing() -> None:
    policies = parse_policies({"p.yaml": COPYING % "{a: [{b: {$copy: metadata.name}}], c: 1}"})
    named = read_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\nspec: {}\n", "c.yaml")
    (mutated,) = evaluate(named, policies, now=NOW, deny_level=DenyLevel.LOW).manifests
    assert mutated.body["spec"]["x"] == {"a": [{"b": "web"}], "c": 1}
    policies = parse_policies({"p.yaml": COPYING % "{$copy: spec.missing}"})
    (kept,) = evaluate(named, policies, now=NOW, deny_level=DenyLevel.LOW).manifests
    assert "x" not in kept.body["spec"]


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=12)  # fmt: skip
SPREAD = [p for p in POLICIES.policies if p.name == "spread-pods"]


@given(selector=JSON, spec=st.dictionaries(st.sampled_from(["selector", "template", "replicas"]), JSON, max_size=3))
@example(selector={"matchLabels": {"app": "a"}}, spec={"template": "a string where a map belongs"})
@example(selector=None, spec={})
@example(selector={}, spec={"template": {"spec": ["a list where a map belongs"]}})
def test_spread_pods_on_any_deployment_shape_copies_the_selector_or_changes_nothing(selector: Any, spec: Any) -> None:
    body: KubeObject = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                        "spec": {**spec, "selector": selector}}  # fmt: skip
    before = copy.deepcopy(body)
    mutated, patch = mutations(body, SPREAD)
    assert body == before  # the request's object is never changed in place
    if not patch:
        assert mutated is body
        return
    added = mutated["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert selector is not None and added[0]["labelSelector"] == selector
    assert added[0]["labelSelector"] is not mutated["spec"]["selector"] or not isinstance(selector, (dict, list))
