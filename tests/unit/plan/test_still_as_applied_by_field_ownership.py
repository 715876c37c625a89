"""plan.diff (pure): a writer since our apply counts as drift only when its fields reach a field Git sets."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.plan.diff import still_as_applied

DESIRED: dict[str, Any] = {
    "apiVersion": "v1", "kind": "ServiceAccount", "automountServiceAccountToken": False,
    "metadata": {"name": "robot", "namespace": "shop", "labels": {"gitopsguard.io/unit": "shop.apps"}},
    "imagePullSecrets": [{"name": "registry"}],
}  # fmt: skip
OURS = {"manager": "gitopsguard", "operation": "Apply", "time": "2026-12-05T10:00:00Z",
        "fieldsV1": {"f:automountServiceAccountToken": {}, "f:imagePullSecrets": {}}}  # fmt: skip


def live_after(fields: Any, manager: str = "other", time: str = "2026-12-05T10:00:01Z") -> dict[str, Any]:
    """DESIRED as stored, the token controller's secrets added, with one more writer's entry after ours."""
    other = {"manager": manager, "operation": "Update", "time": time, "fieldsV1": fields}
    metadata = {**DESIRED["metadata"], "resourceVersion": "12", "managedFields": [OURS, other]}
    return {**DESIRED, "metadata": metadata, "secrets": [{"name": "robot-token-x"}]}


def test_fields_only_others_set_leave_the_object_as_applied() -> None:
    token_controller: dict[str, Any] = {"f:secrets": {".": {}, 'k:{"name":"robot-token-x"}': {".": {}, "f:name": {}}}}
    assert still_as_applied(live_after(token_controller), DESIRED)
    beside: dict[str, Any] = {
        "f:metadata": {"f:annotations": {".": {}, "f:example.com/note": {}}, "f:labels": {"f:team": {}}}
    }
    assert still_as_applied(live_after(beside), DESIRED)
    status: dict[str, Any] = {"f:status": {"f:phase": {}}}  # never desired state, even when Git writes one
    assert still_as_applied({**live_after(status), "status": {"phase": "x"}}, {**DESIRED, "status": {"phase": "x"}})


def test_a_write_reaching_a_field_git_sets_is_for_the_dry_run_even_with_the_same_value() -> None:
    fields: dict[str, Any]
    for fields in (
        {"f:automountServiceAccountToken": {}},  # the field itself
        {"f:metadata": {"f:labels": {"f:gitopsguard.io/unit": {}}}},  # a label Git sets
        {"f:metadata": {"f:labels": {}}},  # every label at once (the whole map owned)
        {"f:imagePullSecrets": {'k:{"name":"registry"}': {"f:name": {}}}},  # an element of a list Git sets
        {"f:metadata": {'k:{"odd":"key"}': {}}},  # a list key where Git has a map: fail closed
        {"f:metadata": []},  # not a field set at all: fail closed
    ):
        assert not still_as_applied(live_after(fields), DESIRED), fields


def test_a_write_older_than_our_apply_was_overwritten_by_it() -> None:
    assert still_as_applied(live_after({"f:automountServiceAccountToken": {}}, time="2026-12-05T09:00:00Z"), DESIRED)


PATHS = st.lists(st.sampled_from(["spec", "data", "secrets", "x", "y"]), min_size=1, max_size=4)


def fields_of(path: list[str]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in reversed(path):
        fields = {f"f:{name}": fields}
    return fields


def body_of(path: list[str], value: object) -> dict[str, Any]:
    body: Any = value
    for name in reversed(path):
        body = {name: body}
    return dict(body)


@given(PATHS, PATHS)
@example(["spec"], ["spec", "x"])  # the other writer's field is inside a value Git sets whole
@example(["spec", "x"], ["spec"])  # the other writer owns the whole struct Git sets a field of
@example(["secrets"], ["spec"])
def test_a_writer_reaches_git_state_exactly_when_one_path_leads_into_the_other(
    mine: list[str], theirs: list[str]
) -> None:
    desired = body_of(mine, "v")
    ours = {**OURS, "fieldsV1": fields_of(mine)}
    other = {"manager": "other", "operation": "Update", "time": "2026-12-05T10:00:01Z", "fieldsV1": fields_of(theirs)}
    live = {**desired, "metadata": {"managedFields": [ours, other]}}
    overlap = mine[: len(theirs)] == theirs[: len(mine)]
    assert still_as_applied(live, desired) is not overlap
