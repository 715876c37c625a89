"""A CEL rule that cannot be evaluated on one object is a finding on that object (fail closed, at the
policy's severity, saying it cannot be evaluated), never an exception that escapes the evaluator: a tenant
decides how large its objects are, and the CEL runtime gives up on large ones with its own errors."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.model import Manifest, ObjectKey
from gitopsguard.policy import DenyLevel, evaluate, parse_policies
from gitopsguard.policy.cel import CelRuntimeError, compile_expression
from gitopsguard.policy.model import Check, Context, PolicySet
from tests.policies import EVERY_ENV, no_plain_passwords_policy

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
POLICY = no_plain_passwords_policy()


def deployment(env_entries: int) -> dict[str, Any]:
    env = [{"name": f"V{i:05d}", "value": ""} for i in range(env_entries)]
    container = {"name": "c", "image": "example/x:1", "env": env}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "many-env", "namespace": "shop"},
            "spec": {"template": {"spec": {"containers": [container]}}}}  # fmt: skip


def manifest(body: dict[str, Any]) -> Manifest:
    return Manifest(ObjectKey.of(body), body, "apps/x.yaml:1")


def test_a_cel_rule_over_a_huge_list_raises_the_typed_error_not_the_runtimes() -> None:
    # before the fix: RuntimeError("Iteration budget exceeded") escaped from the C++ runtime
    with pytest.raises(CelRuntimeError, match="budget"):
        compile_expression(EVERY_ENV).holds(deployment(10_000), None)


def test_a_huge_object_under_a_cel_rule_is_a_finding_that_it_cannot_be_evaluated() -> None:
    result = evaluate([manifest(deployment(10_000))], parse_policies({"policies/p.yaml": POLICY}), now=NOW,
                      deny_level=DenyLevel.HIGH)  # fmt: skip
    (finding,) = result.results[0].findings
    assert (finding.policy, finding.code, finding.severity.value) == ("no-plain-passwords", "GG3002", "HIGH")
    assert finding.message.startswith("policies/p.yaml:10: CEL expression failed on this object")
    assert "budget" in finding.message
    assert result.results[0].denied


def test_a_small_object_under_the_same_rule_is_compliant() -> None:
    result = evaluate([manifest(deployment(3))], parse_policies({"policies/p.yaml": POLICY}), now=NOW,
                      deny_level=DenyLevel.HIGH)  # fmt: skip
    assert result.results[0].findings == ()


def _raising(error: BaseException) -> Check:
    def check(body: dict[str, Any], ctx: Context) -> list[Any]:
        raise error

    return check


@given(st.sampled_from([RuntimeError("Iteration budget exceeded"), RecursionError("too deep"), KeyError("x"),
                        TypeError("odd"), ValueError("bad"), MemoryError(), OverflowError("huge")]))  # fmt: skip
@example(RuntimeError("Iteration budget exceeded"))
def test_any_error_a_check_raises_is_a_finding_on_that_object_only(error: Exception) -> None:
    """The general rule: whatever one policy's check raises on one object, the evaluator returns a finding
    naming the policy and the object, at the policy's severity; other objects and policies are judged as usual."""
    other = parse_policies({"policies/p.yaml": POLICY})
    broken = replace(other.policies[0], name="broken", code="GG9", check=_raising(error))
    policies = PolicySet((broken, *other.policies), other.exceptions)
    bodies = [deployment(2), {**deployment(2), "metadata": {"name": "second", "namespace": "shop"}}]
    result = evaluate([manifest(b) for b in bodies], policies, now=NOW, deny_level=DenyLevel.HIGH)
    for one in result.results:
        (finding,) = one.findings
        assert (finding.policy, finding.code, finding.severity.value) == ("broken", "GG9", "HIGH")
        assert finding.message.startswith(f"{one.key}: policy broken cannot be evaluated on it")
        assert one.denied
