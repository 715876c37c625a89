"""`up` calls the node ready only when Pods can land on it: Ready, and the admission's not-ready taint lifted."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitopsguard.devcluster.node_components import node_ready

READY = {"type": "Ready", "status": "True"}


def node(conditions: list[dict[str, str]], taints: list[dict[str, str]] | None = None) -> str:
    return json.dumps({"spec": {"taints": taints} if taints is not None else {}, "status": {"conditions": conditions}})


@pytest.mark.parametrize(
    ("body", "ready"),
    [
        (node([READY]), True),
        (node([READY], [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]), False),
        (node([READY], [{"key": "gitopsguard.io/tests-opt-in", "effect": "NoSchedule"}]), True),
        (node([{"type": "Ready", "status": "False"}]), False),
        (node([{"type": "MemoryPressure", "status": "True"}]), False),
        ("not json", False),
        ("[]", False),
        ('{"spec": null, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}', False),
    ],
)
def test_node_is_ready_only_when_ready_and_schedulable(body: str, ready: bool) -> None:
    assert node_ready(body) is ready


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
)


@given(JSON)
def test_any_answer_from_the_server_is_judged_without_crashing(value: object) -> None:
    assert node_ready(json.dumps(value)) in {True, False}
