"""units/order.py: dependencies first, deterministic; cycles and missing dependencies refused by name."""

from __future__ import annotations

import random
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from gitopsguard.units import Readiness, UnitRef, UnitSpec, apply_order, blocked

INFRA, APPS, DB, WEB = (UnitRef("platform", "infra"), UnitRef("team-a", "apps"), UnitRef("team-a", "db"),
                        UnitRef("team-b", "web"))  # fmt: skip


def spec(ref: UnitRef, *needs: UnitRef) -> UnitSpec:
    return UnitSpec(ref, f"units/{ref.name}.yaml:1", f"teams/{ref.name}", timedelta(minutes=5), depends_on=needs)


def test_dependencies_come_first_and_ties_go_by_namespace_and_name() -> None:
    units = [spec(WEB, APPS), spec(APPS, INFRA, DB), spec(DB, INFRA), spec(INFRA)]
    assert apply_order(units).order == (INFRA, DB, APPS, WEB)
    assert apply_order(units).refused == {}


def test_the_order_is_the_same_whatever_order_the_units_were_read_in() -> None:
    units = [spec(UnitRef("ns", f"u{i:03}"), *(UnitRef("ns", f"u{j:03}") for j in range(0, i, 7))) for i in range(60)]
    expected = apply_order(units).order
    for seed in range(5):
        shuffled = list(units)
        random.Random(seed).shuffle(shuffled)  # noqa: S311  (a fixed order to test against, not a secret)
        assert apply_order(shuffled).order == expected


def test_a_cycle_is_refused_naming_the_cycle_and_the_rest_still_runs() -> None:
    units = [spec(INFRA), spec(APPS, DB), spec(DB, WEB), spec(WEB, APPS), spec(UnitRef("team-c", "x"), INFRA)]
    order = apply_order(units)
    assert order.order == (INFRA, UnitRef("team-c", "x"))
    cycle = "Unit/team-a/apps -> Unit/team-a/db -> Unit/team-b/web -> Unit/team-a/apps"
    assert order.refused == {ref: f"{ref}: dependsOn forms a cycle: {cycle}; remove one of these dependencies"
                             for ref in (APPS, DB, WEB)}  # fmt: skip


def test_a_missing_dependency_is_named_and_holds_its_dependents() -> None:
    order = apply_order([spec(APPS, INFRA), spec(WEB, APPS), spec(DB)])
    assert order.order == (DB,)
    assert order.refused[APPS].startswith("Unit/team-a/apps: dependsOn Unit/platform/infra: no such Unit in the root")
    assert order.refused[WEB].startswith("Unit/team-b/web: dependsOn Unit/team-a/apps, which cannot be served: "
                                         "Unit/team-a/apps: dependsOn Unit/platform/infra: no such Unit")  # fmt: skip


def test_a_long_chain_is_ordered_without_recursion_and_its_refusals_stay_short() -> None:
    refs = [UnitRef("ns", f"u{i:05}") for i in range(3000)]
    units = [spec(refs[0], UnitRef("ns", "gone"))] + [spec(refs[i], refs[i - 1]) for i in range(1, 3000)]
    assert apply_order([*units[1:], spec(refs[0])]).order == tuple(refs)
    refused = apply_order(units).refused
    assert len(refused) == 3000 and max(len(why) for why in refused.values()) < 300


def test_a_cycle_through_a_long_chain_is_found() -> None:
    refs = [UnitRef("ns", f"u{i:05}") for i in range(2000)]
    units = [spec(refs[i], refs[(i + 1) % 2000]) for i in range(2000)]
    assert set(apply_order(units).refused) == set(refs)


def test_a_unit_waits_for_a_dependency_that_is_not_ready_with_its_reason() -> None:
    units = [spec(APPS, INFRA, DB), spec(WEB, DB), spec(INFRA)]
    ready = {INFRA: Readiness(False, "HealthCheckFailed", "Deployment/platform/ingress not available"),
             DB: Readiness(True, "ReconciliationSucceeded")}  # fmt: skip
    assert blocked(units, ready) == {
        APPS: "waiting for Unit/platform/infra: not Ready: HealthCheckFailed"  # another namespace's: no message
    }


def test_a_unit_waits_for_a_dependency_that_was_never_reconciled() -> None:
    assert blocked([spec(APPS, INFRA)], {}) == {APPS: "waiting for Unit/platform/infra: it has no status yet (not "
                                                      "reconciled)"}  # fmt: skip


refs = st.sampled_from([UnitRef("ns", f"u{i}") for i in range(8)])


@given(st.dictionaries(refs, st.lists(refs, max_size=3, unique=True), min_size=1))
def test_every_unit_is_ordered_after_its_dependencies_or_refused(graph: dict[UnitRef, list[UnitRef]]) -> None:
    units = [spec(ref, *(d for d in needs if d != ref)) for ref, needs in graph.items()]
    order = apply_order(units)
    assert set(order.order) | set(order.refused) == set(graph) and not set(order.order) & set(order.refused)
    position = {ref: i for i, ref in enumerate(order.order)}
    for unit in units:
        if unit.ref in position:
            assert all(position.get(d, len(units)) < position[unit.ref] for d in unit.depends_on)
