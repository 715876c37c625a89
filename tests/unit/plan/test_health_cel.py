"""A Unit's CEL checks (``spec.wait.cel``) decide the health of kinds without a rule: the expression sees the
object as ``self``; false is InProgress; a field not there yet is waited for; any other error is Failed,
naming the Unit's file and the expression, never an exception; an expression too costly stops at the CEL
runtime's iteration budget."""

from __future__ import annotations

from typing import Any

import pytest

from gitopsguard.plan.health import HealthCheck, State, health_of
from gitopsguard.policy.cel import CelCompileError, compile_expression

WHERE = "clusters/prod/units.yaml:4: Unit/shop/app: spec.wait.cel[0]"
READY = "self.status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')"


def check(expression: str, api_version: str = "cert-manager.io/v1", kind: str = "Certificate") -> HealthCheck:
    return HealthCheck(api_version, kind, WHERE, compile_expression(expression, over_self=True))


def certificate(status: Any = None, *, api_version: str = "cert-manager.io/v1") -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": api_version, "kind": "Certificate",
                            "metadata": {"name": "tls", "namespace": "shop", "generation": 1}}  # fmt: skip
    if status is not None:
        body["status"] = status
    return body


def test_a_custom_resource_is_current_when_its_expression_holds() -> None:
    health = health_of(certificate({"conditions": [{"type": "Ready", "status": "True"}]}), [check(READY)])
    assert health.state is State.CURRENT


def test_a_false_expression_is_in_progress_naming_the_units_file_and_the_expression() -> None:
    health = health_of(certificate({"conditions": [{"type": "Ready", "status": "False"}]}), [check(READY)])
    assert health.state is State.IN_PROGRESS
    assert health.reason == f"{WHERE}: {READY}: is false"


def test_a_field_not_written_yet_is_waited_for_not_failed() -> None:
    health = health_of(certificate(), [check(READY)])
    assert health.state is State.IN_PROGRESS
    assert health.reason.startswith(f"{WHERE}: {READY}: NOT_FOUND")
    assert "has()" in health.reason


@pytest.mark.parametrize(("expression", "words"), [
    ("self.status.items[0].type > 1", "No matching overloads"),
    ("self.status.items.size()", "returned int, not a boolean"),
    ("self.status.items.all(a, self.status.items.all(b, true))", "too large for this expression"),
])  # fmt: skip
def test_an_expression_that_cannot_be_evaluated_is_failed_naming_the_file_and_expression(
    expression: str, words: str
) -> None:
    status = {"items": [{"type": "Ready", "status": "True"}] * 500}
    health = health_of(certificate(status), [check(expression)])
    assert health.state is State.FAILED
    assert health.reason.startswith(f"{WHERE}: {expression}: cannot be evaluated on it: ")
    assert words in health.reason and health.reason.endswith("fix the expression")


def test_an_expression_over_a_huge_status_is_stopped_by_the_iteration_budget() -> None:
    # the object's size is the tenant's choice; the runtime's iteration budget, not the size, bounds the work
    status = {"items": list(range(5000)), "conditions": []}
    health = health_of(certificate(status), [check("self.status.items.map(a, self.status.items.map(b, a)).size() > 0")])
    assert health.state is State.FAILED and "budget" in health.reason


def test_a_check_applies_to_its_group_and_kind_at_any_version() -> None:
    # the object read at v1beta1 is the same object: a check must not be skipped for its version
    failing = check("self.status.ready == true", "cert-manager.io/v1")
    assert health_of(certificate({"ready": False}, api_version="cert-manager.io/v1beta1"), [failing]).state is (
        State.IN_PROGRESS
    )


def test_a_check_of_another_kind_or_group_does_not_apply() -> None:
    never = check("false")
    other_kind = {"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": {"name": "i"}}
    other_group = {**certificate(), "apiVersion": "example.com/v1"}
    assert health_of(other_kind, [never]).state is State.CURRENT
    assert health_of(other_group, [never]).state is State.CURRENT


def test_every_check_of_a_kind_must_hold() -> None:
    body = certificate({"conditions": [{"type": "Ready", "status": "True"}], "serial": 7})
    assert health_of(body, [check(READY), check("self.status.serial == 8")]).state is State.IN_PROGRESS


def test_a_check_on_a_workload_adds_to_its_rule_and_never_replaces_it() -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "generation": 1},
                  "spec": {"replicas": 2}, "status": {"observedGeneration": 1, "replicas": 2}}  # fmt: skip
    health = health_of(deployment, [check("true", "apps/v1", "Deployment")])
    assert health.state is State.IN_PROGRESS and "replicas updated" in health.reason


def test_a_stalled_custom_resource_is_failed_before_its_check_runs() -> None:
    status = {"conditions": [{"type": "Stalled", "status": "True", "reason": "Bad", "message": "no issuer"}]}
    health = health_of(certificate(status), [check("true")])
    assert health.state is State.FAILED and health.reason == "stalled: no issuer (Bad)"


def test_an_expression_sees_self_and_nothing_else() -> None:
    with pytest.raises(CelCompileError, match="undeclared reference to 'object"):
        compile_expression("object.status.ready", over_self=True)
    with pytest.raises(CelCompileError, match="undeclared reference to 'self"):
        compile_expression("self.status.ready")  # the policies' expressions keep Kubernetes' names


def test_an_object_nested_past_what_the_cel_runtime_survives_is_not_evaluated() -> None:
    # before the guard: the C++ runtime's conversion recursed until SIGSEGV (from about 7,000 levels), killing
    # the process; the API server stores a custom resource nested 1,500 deep (seen on the dev cluster)
    deep: list[Any] = []
    for _ in range(20_000):
        deep = [deep]
    health = health_of(certificate({"conditions": [{"type": "Ready", "status": "True"}], "x": deep}), [check(READY)])
    assert health.state is State.UNKNOWN
    assert health.reason == f"{WHERE}: {READY}: not evaluated: the object is nested deeper than 100 levels"


def test_an_object_within_the_depth_bound_is_evaluated() -> None:
    deep: list[Any] = []
    for _ in range(90):
        deep = [deep]
    body = certificate({"conditions": [{"type": "Ready", "status": "True"}], "x": deep})
    assert health_of(body, [check(READY)]).state is State.CURRENT
