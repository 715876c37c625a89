"""A reconcile request is answered once, whatever its value holds. Whoever may annotate a Unit (its team, with
one namespace) sets ``reconcile.gitopsguard.io/requestedAt``; the status keeps the value as it may be shown
(``visible``: a zero-width space, an escape sequence or a bidi control written as an escape; at most 256
characters). The loop compared the value as written with the value as kept, found the request never answered,
and so passed that Unit in every round of the Units loop, due whatever its interval, for as long as the
annotation stayed: a tenant's one annotation bought its Unit a pass in every round (and the root a look
through every Unit for new requests). Who breaks it: a tenant writing a value with a character ``visible``
escapes, or a value longer than 256 characters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.cluster.units import API_VERSION, REQUESTED_AT, LiveUnit
from gitopsguard.fleet_turns import Schedule
from gitopsguard.units import Phase, UnitRef, status_of
from gitopsguard.units.conditions import PassOutcome

NOW = datetime(2026, 12, 6, tzinfo=UTC)
COMMIT = "0123456789abcdef0123456789abcdef01234567"
REF = UnitRef("team-a", "web")


def answered(requested: str) -> LiveUnit:
    """The Unit as the pass that served ``requested`` left it."""
    status = status_of(PassOutcome(Phase.SUCCEEDED, 1, COMMIT, objects=1, handled=requested), None, NOW)
    body: dict[str, Any] = {
        "apiVersion": API_VERSION, "kind": "Unit",
        "metadata": {"namespace": REF.namespace, "name": REF.name, "generation": 1, "resourceVersion": "7",
                     "annotations": {REQUESTED_AT: requested}},
        "status": status,
    }  # fmt: skip
    return LiveUnit.of(body)


def passed_now(schedule: Schedule, at: float) -> Schedule:
    schedule.due[REF], schedule.commit[REF] = at + 600.0, COMMIT  # its next pass is ten minutes away
    return schedule


@given(requested=st.text(min_size=1, max_size=400))
@example(requested="2026-12-06T04:00:00Z\u200b")  # a zero-width space: escaped in the status
@example(requested="now\x1b]52;c;aGk=\x07")  # an OSC 52 sequence
@example(requested="\u202enow")  # a bidi override
@example(requested="now\udc80")  # a lone surrogate (JSON's "\udc80" reads as one)
@example(requested="x" * 300)  # longer than the status keeps
def test_an_answered_request_with_any_value_leaves_the_unit_due_at_its_interval_only(requested: str) -> None:
    live = answered(requested)
    schedule = passed_now(Schedule(), 1000.0)
    assert not schedule.is_due(REF, live, COMMIT, 1001.0, moved=False)
    timed, other = schedule.due_now({REF: live}, COMMIT, 1001.0)
    assert (timed, other) == (set(), set())


def test_a_request_not_answered_yet_makes_the_unit_due_at_once() -> None:
    live = answered("2026-12-06T04:00:00Z\u200b")
    body = {**live.body, "metadata": {**live.body["metadata"], "annotations": {REQUESTED_AT: "later\u200b"}}}
    schedule = passed_now(Schedule(), 1000.0)
    assert schedule.is_due(REF, LiveUnit.of(body), COMMIT, 1001.0, moved=False)
