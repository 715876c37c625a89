"""When a Unit's next pass is due (``fleet_turns.due_after``): never early, never more than a twentieth of
its wait late, and Units due about the same time share one round."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gitopsguard.fleet_turns import COALESCE, due_after

NOW = st.floats(0, 1e7, allow_nan=False)
WAIT = st.floats(0.01, 86_400, allow_nan=False)


@given(now=NOW, wait=WAIT)
def test_a_pass_is_never_due_before_its_wait_nor_more_than_a_twentieth_of_it_after(now: float, wait: float) -> None:
    due = due_after(wait, now)
    assert now + wait <= due <= now + wait + wait / COALESCE * 1.000001


def test_units_made_ready_over_forty_seconds_come_due_in_at_most_fourteen_rounds_a_minute() -> None:
    """The shape of bench/units_1000.py: 1,000 Units of a 60 s interval passed over 40 s."""
    dues = {due_after(60.0, 1000.0 + i * 0.04) for i in range(1000)}
    assert len(dues) <= 14


def test_a_wait_of_nothing_is_due_at_once() -> None:
    assert due_after(0.0, 5.0) == 5.0
