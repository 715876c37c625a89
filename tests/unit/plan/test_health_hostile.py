"""health_of on bodies nobody vouches for: whatever the status holds (any types, any size, any words), it
answers a Health and never raises; it is Current only when the kind's rule says so; and the reason it
gives is one short line, fit for a Unit's status and Slack."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.plan.health import MAX_SAID_CHARS, State, health_of

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20)  # fmt: skip
FIELDS = st.sampled_from(["replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                          "observedGeneration", "desiredNumberScheduled", "numberReady", "conditions",
                          "currentRevision", "succeeded"])  # fmt: skip
KINDS = st.sampled_from([("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("apps/v1", "DaemonSet"),
                         ("batch/v1", "Job"), ("v1", "ConfigMap"), ("example.com/v1", "Widget")])  # fmt: skip
HUGE = 10**5000  # str() of it raises ValueError in Python 3.11: a message must not try


def _body(kind: tuple[str, str], status: Any, spec: Any, generation: Any) -> dict[str, Any]:
    return {"apiVersion": kind[0], "kind": kind[1], "metadata": {"name": "x", "generation": generation},
            "spec": spec, "status": status}  # fmt: skip


def _one_line(reason: str) -> bool:
    return "\n" not in reason and "\u202e" not in reason and len(reason) < 4 * MAX_SAID_CHARS + 200


@given(KINDS, st.dictionaries(FIELDS, VALUES, max_size=6) | VALUES, st.dictionaries(FIELDS, VALUES) | VALUES,
       st.one_of(st.integers(), SCALARS))  # fmt: skip
@example(("apps/v1", "Deployment"), {"observedGeneration": 1, "replicas": HUGE}, {"replicas": HUGE}, 1)
@example(("apps/v1", "Deployment"), {"observedGeneration": HUGE}, {}, HUGE)
@example(("batch/v1", "Job"), {"conditions": [{"type": "Complete", "status": "True", "message": "a\n" * 9999}]}, {}, 1)
def test_any_status_gives_a_health_and_a_one_line_reason(kind: tuple[str, str], status: Any, spec: Any,
                                                         generation: Any) -> None:  # fmt: skip
    health = health_of(_body(kind, status, spec, generation))
    assert health.state in set(State)
    assert health.reason and _one_line(health.reason)


@given(VALUES)
def test_any_object_at_all_gives_a_health(body: Any) -> None:
    assert health_of(body).state in set(State)


def test_a_huge_count_is_unknown_and_its_reason_does_not_print_it() -> None:
    body = _body(("apps/v1", "StatefulSet"), {"observedGeneration": 1, "replicas": HUGE}, {"replicas": HUGE}, 1)
    health = health_of(body)
    assert health.state is State.UNKNOWN
    assert "replicas is an integer too large" in health.reason


def test_words_from_the_cluster_are_cut_to_one_short_line() -> None:
    message = "Deployment does not\nhave \u202eminimum availability.\x1b[31m" + "x" * 5000
    status = {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
              "conditions": [{"type": "Available", "status": "False", "reason": "R", "message": message}]}  # fmt: skip
    health = health_of(_body(("apps/v1", "Deployment"), status, {"replicas": 1}, 1))
    assert health.state is State.IN_PROGRESS
    assert "Deployment does not have minimum availability. [31mxxx" in health.reason
    assert _one_line(health.reason) and "\x1b" not in health.reason
    assert health.reason.endswith("... (R)")


def test_a_negative_replica_count_in_status_is_never_taken_as_enough() -> None:
    # -5 available against 0 wanted would pass "updated > available" comparisons the other way round
    status = {"observedGeneration": 1, "replicas": 0, "updatedReplicas": -5, "availableReplicas": -5,
              "readyReplicas": 0, "conditions": [{"type": "Available", "status": "True"}]}  # fmt: skip
    assert health_of(_body(("apps/v1", "Deployment"), status, {"replicas": 0}, 1)).state is State.UNKNOWN


ROLLED_OUT: dict[str, dict[str, dict[str, Any]]] = {
    "apps/v1/Deployment": {"spec": {"replicas": 2}, "status": {
        "observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2,
        "conditions": [{"type": "Available", "status": "True"}]}},
    "apps/v1/StatefulSet": {"spec": {"replicas": 2}, "status": {
        "observedGeneration": 1, "replicas": 2, "readyReplicas": 2, "currentReplicas": 2, "updatedReplicas": 2,
        "currentRevision": "a", "updateRevision": "a"}},
    "apps/v1/DaemonSet": {"spec": {}, "status": {
        "observedGeneration": 1, "desiredNumberScheduled": 2, "currentNumberScheduled": 2,
        "updatedNumberScheduled": 2, "numberAvailable": 2, "numberReady": 2}},
}  # fmt: skip
ODD = st.one_of(st.booleans(), st.text(max_size=5), st.floats(), st.integers(max_value=-1),
                st.integers(min_value=2**31), st.lists(st.integers(), max_size=2), st.just({"n": 2}))  # fmt: skip


@pytest.mark.parametrize("kind", sorted(ROLLED_OUT))
def test_each_rolled_out_fixture_is_current_as_written(kind: str) -> None:
    api_version, _, name = kind.rpartition("/")
    assert health_of(_body((api_version, name), **_parts(kind))).current


@pytest.mark.parametrize("kind", sorted(ROLLED_OUT))
@given(data=st.data())
def test_a_rolled_out_workload_with_any_count_made_odd_is_never_current(kind: str, data: st.DataObject) -> None:
    # whoever may write /status (or a buggy controller) cannot pass a workload off as rolled out with a count
    # typed as text, true, a float, a negative or a huge number
    parts = _parts(kind)
    part = data.draw(st.sampled_from(["spec", "status"]))
    counts = [k for k, v in parts[part].items() if isinstance(v, int)]
    if not counts:
        return
    field = data.draw(st.sampled_from(counts))
    parts[part] = {**parts[part], field: data.draw(ODD)}
    api_version, _, name = kind.rpartition("/")
    assert not health_of(_body((api_version, name), **parts)).current


def _parts(kind: str) -> dict[str, Any]:
    fixture = ROLLED_OUT[kind]
    return {"spec": dict(fixture["spec"]), "status": dict(fixture["status"]), "generation": 1}
