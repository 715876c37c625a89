"""Which Units a round of the Units loop looks at (``Standing.to_look_at``). A Unit not looked at gives its
readiness as listed without a turn; who would break it: a Unit whose turn is skipped although it had something
to do (suspended, due, moved, held busy, or waiting on a dependency), so a drift or a dependency's failure would
go unanswered until a restart."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from gitopsguard.cluster.units import LiveUnit
from gitopsguard.fleet_standing import Standing
from gitopsguard.fleet_status import answering
from gitopsguard.units import UnitRef, UnitSpec, apply_order

NAMES = [f"u{i}" for i in range(8)]


def spec(name: str, *, depends_on: tuple[str, ...] = (), suspend: bool = False) -> UnitSpec:
    return UnitSpec(UnitRef("team", name), "root/units.yaml:1", name, timedelta(minutes=1),
                    depends_on=tuple(UnitRef("team", d) for d in depends_on), suspend=suspend)  # fmt: skip


def standing_of(specs: list[UnitSpec]) -> Standing:
    order = apply_order(tuple(specs))
    return Standing(((), tuple(specs), frozenset(), "c"), {}, frozenset(s.ref for s in specs), tuple(specs), {},
                    order, {}, ())  # fmt: skip


def ref(name: str) -> UnitRef:
    return UnitRef("team", name)


def test_a_round_looks_at_units_due_moved_or_busy_and_always_at_suspended_ones_and_both_ends_of_a_dependency() -> None:
    specs = [spec("quiet"), spec("due"), spec("paused", suspend=True), spec("base"), spec("app", depends_on=("base",)),
             spec("moved"), spec("busy")]  # fmt: skip
    standing = standing_of(specs)
    looked = standing.to_look_at({ref("due")}, (ref("moved"),), [ref("busy"), ref("not-served")])
    assert set(looked) == {ref(n) for n in ("due", "paused", "base", "app", "moved", "busy")}
    assert list(looked) == [r for r in standing.order.order if r in set(looked)], "in the round's order"
    assert standing.to_look_at() == tuple(r for r in standing.order.order if r in {ref(n) for n in ("paused", "base",
                                                                                                   "app")})  # fmt: skip


@st.composite
def units(draw: st.DrawFn) -> list[UnitSpec]:
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, min_size=1))
    return [spec(n, suspend=draw(st.booleans()),
                 depends_on=tuple(draw(st.lists(st.sampled_from(names[:i]), unique=True, max_size=2)) if i else ()))
            for i, n in enumerate(names)]  # fmt: skip


@given(units(), st.sets(st.sampled_from(NAMES)))
def test_every_unit_a_round_leaves_out_has_nothing_to_do_but_give_its_listed_readiness(
    specs: list[UnitSpec], wanted: set[str]
) -> None:
    standing = standing_of(specs)
    looked = set(standing.to_look_at({ref(n) for n in wanted}))
    needed = {s.ref for s in specs if s.suspend or s.depends_on or s.ref.name in wanted}
    needed |= {d for s in specs for d in s.depends_on}
    assert needed & set(standing.order.order) <= looked <= set(standing.order.order)


def test_a_unit_answering_a_request_reads_the_request_it_answers_not_one_read_before() -> None:
    body = {"metadata": {"name": "apps", "namespace": "team", "annotations": {
        "reconcile.gitopsguard.io/requestedAt": "later"}}, "status": {"observedGeneration": 1}}  # fmt: skip
    live = LiveUnit.of(body)
    assert live.requested_at == "later" and live.status == {"observedGeneration": 1}  # read, and kept
    assert answering(live, "earlier").requested_at == "earlier"
    assert answering(live, None).requested_at is None
    assert live.requested_at == "later"
