"""Which Units that left the root path retire, what retiring them deletes, and the brake over all of them
(``plan/retire.py``, pure). The loop's side is ``tests/integration/test_units_retire.py``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.model import UNIT_LABEL, ObjectKey, Reason
from gitopsguard.plan.prune import BrakePolicy
from gitopsguard.plan.retire import (
    Declared,
    Served,
    declared_of,
    plan_retirement,
    recorded,
    retirement_brake,
    retiring,
)
from gitopsguard.units import UnitRef, UnitSpec
from gitopsguard.units.root import RootUnits

ROOT = "clusters/prod"


def served(name: str, **fields: Any) -> Served:
    values: dict[str, Any] = {"path": f"teams/{name}", "account": None, "prune": True, "suspend": False,
                              "report_only": False, "origin": "clusters/prod/units.yaml:1"} | fields  # fmt: skip
    return Served(UnitRef("team", name), **values)


def records(*names: str) -> dict[UnitRef, Served]:
    return {(s := served(n)).ref: s for n in names}


def unit_key(name: str) -> ObjectKey:
    return ObjectKey("gitopsguard.io", "Unit", "team", name)


def configmap(unit: str, name: str, **annotations: str) -> tuple[ObjectKey, dict[str, Any]]:
    key = ObjectKey("", "ConfigMap", "team", name)
    return key, {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": name, "namespace": "team", "labels": {UNIT_LABEL: unit},
                              "annotations": annotations}}  # fmt: skip


def declared(*names: str) -> Declared:
    return Declared("abc123def4567", frozenset(UnitRef("team", n) for n in names))


def test_a_unit_the_applied_commit_still_declares_never_retires_though_its_object_was_deleted_by_hand() -> None:
    decision = retiring(records("a", "b"), declared("a", "b"), root_owns=(), live=(), root_path=ROOT)
    assert decision.units == () and decision.waiting == ()


def test_a_unit_the_applied_commit_no_longer_declares_retires_once_its_object_is_gone() -> None:
    decision = retiring(records("a", "b"), declared("a"), root_owns={unit_key("a")}, live={UnitRef("team", "a")},
                        root_path=ROOT)  # fmt: skip
    assert decision.units == (served("b"),)


@pytest.mark.parametrize(
    ("root_owns", "live"),
    [
        ({unit_key("b")}, set()),
        (set(), {UnitRef("team", "b")}),
        ({ObjectKey("gitopsguard.io", "units", "team", "b")}, set()),
    ],
    ids=["the root's brake held its object", "its object is in the cluster", "owned under another spelling"],
)
def test_a_unit_whose_object_remains_waits_and_says_why(root_owns: set[ObjectKey], live: set[UnitRef]) -> None:
    decision = retiring(records("a", "b"), declared("a"), root_owns=root_owns, live=live, root_path=ROOT)
    assert decision.units == ()
    assert decision.waiting[0].startswith(f"Unit/team/b: left the root path {ROOT} at abc123def456 but its Unit ")


def test_nothing_retires_without_an_applied_commit() -> None:
    decision = retiring(records("a"), declared_of(None), root_owns=(), live=(), root_path=ROOT)
    assert decision.units == () and "has no applied commit" in decision.waiting[0]


def test_a_unit_refused_by_name_is_still_declared_and_an_unnamed_one_holds_every_retirement() -> None:
    spec = UnitSpec(UnitRef("team", "a"), "x:1", "teams/a", timedelta(minutes=5))
    refused_b = RootUnits((spec,), ("x:2: Unit/team/b: spec.interval: ...",), {UnitRef("team", "b"): "..."})
    assert retiring(records("a", "b"), declared_of(("c0ffee", refused_b)), (), (), root_path=ROOT).units == ()
    unnamed = RootUnits((spec,), ("x:3: Unit: metadata must be a mapping with a name",))
    decision = retiring(records("a", "b"), declared_of(("c0ffee", unnamed)), (), (), root_path=ROOT)
    assert decision.units == () and "whose name cannot be read" in decision.waiting[0]


def test_retiring_deletes_only_what_is_still_labelled_the_units_and_not_marked_prune_disabled() -> None:
    kept, theirs, marked = configmap("team.b", "kept"), configmap("team.x", "theirs"), configmap(
        "team.b", "marked", **{"gitopsguard.io/prune": "disabled"})  # fmt: skip
    gone = ObjectKey("", "ConfigMap", "team", "gone")
    live = dict([kept, theirs, marked])
    plan = plan_retirement(served("b"), frozenset({kept[0], theirs[0], marked[0], gone}), live)
    assert plan.delete == (kept[0],) and plan.owned == 4
    assert dict(plan.keep) == {theirs[0]: Reason.NOT_OURS, marked[0]: Reason.PRUNE_DISABLED}


@pytest.mark.parametrize("fields", [{"prune": False}, {"suspend": True}, {"report_only": True}])
def test_a_unit_without_prune_suspended_or_report_only_is_retired_orphaning_its_objects(fields: Any) -> None:
    key, body = configmap("team.b", "kept")
    plan = plan_retirement(served("b", **fields), frozenset({key}), {key: body})
    assert plan.delete == () and plan.keep == ()


def plans(counts: dict[str, int], kind: str = "ConfigMap") -> list[Any]:
    out = []
    for name, count in counts.items():
        where = "" if kind == "Namespace" else "team"
        keys = [ObjectKey("", kind, where, f"{name}-{i}") for i in range(count)]
        live = {k: {"metadata": {"labels": {UNIT_LABEL: f"team.{name}"}}} for k in keys}
        out.append(plan_retirement(served(name), frozenset(keys), live))
    return out


def test_the_brake_counts_what_all_retiring_units_delete_together() -> None:
    # each retirement alone is a quarter of what the Units own; together they are all of it
    assert retirement_brake(plans({"a": 2}), 8, BrakePolicy(), root_path=ROOT) is None
    held = retirement_brake(plans({"a": 2, "b": 2, "c": 2, "d": 2}), 8, BrakePolicy(), root_path=ROOT)
    assert held == (f"retiring 4 Units that left the root path {ROOT}, Unit/team/a (2), Unit/team/b (2), "
                    "Unit/team/c (2), Unit/team/d (2), would delete 8 of the 8 objects the root path's Units own, "
                    "more than 25%")  # fmt: skip
    assert retirement_brake(plans({"a": 2, "b": 2}), 8, BrakePolicy(released=True), root_path=ROOT) is None


def test_the_brake_holds_any_namespace_a_retirement_would_delete_until_released() -> None:
    namespaces = plans({"a": 1}, kind="Namespace")
    held = retirement_brake(namespaces, 100, BrakePolicy(), root_path=ROOT)
    assert held is not None and "Namespace/a-0 (Namespaces, CRDs and PVCs need a release)" in held
    assert retirement_brake(namespaces, 100, BrakePolicy(released=True), root_path=ROOT) is None


def test_a_brake_over_many_units_names_ten_and_counts_the_rest() -> None:
    held = retirement_brake(plans({f"u{i}": 1 for i in range(14)}), 14, BrakePolicy(), root_path=ROOT)
    assert held is not None and "Unit/team/u9 (1) and 4 more," in held and "u10" not in held


def test_only_a_changed_or_new_record_is_written() -> None:
    spec = UnitSpec(UnitRef("team", "a"), "clusters/prod/units.yaml:1", "teams/a", timedelta(minutes=5))
    assert recorded(records("a"), [spec]) == {}
    assert recorded(records("a"), [spec], report_only=True) == {spec.ref: served("a", report_only=True)}
    assert recorded({}, [spec]) == {spec.ref: served("a")}


def test_a_record_reads_back_as_written() -> None:
    one = served("a", account="deployer", prune=False)
    assert Served.of_row(one.row()) == one and one.spec().service_account_name == "deployer"


rows = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=9), max_leaves=20)  # fmt: skip


@given(rows)
@example(["team", "a", "teams/a", "a:b", True, False, False, "x:1"])  # an account that would name another user
@example(["team", "a", "teams/a", None, "true", False, False, "x:1"])  # "true" is no boolean
@example(["Team", "a", "teams/a", None, True, False, False, "x:1"])
def test_a_stored_record_is_a_record_or_refused_with_value_error(row: Any) -> None:
    try:
        read = Served.of_row(row)
    except ValueError:
        return
    assert read.row() == row
