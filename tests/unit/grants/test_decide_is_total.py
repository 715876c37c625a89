"""decide() answers for every input it can be given: commit times from the far past or future (a committer
date is whatever the pusher wrote), any durations up to the loaders' bound, any remembered state. It never
raises, and a grant is never ACTIVE beyond what its policy allows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.grants.decide import decide
from gitopsguard.grants.fields import MAX_DURATION
from gitopsguard.grants.model import Approval, EscalationPolicy, Grant, Identity, People, Remembered, RoleRule, State

VIEW = RoleRule("ClusterRole", "view", frozenset({"shop"}))
anytime = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC))
clock = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
spans = st.timedeltas(min_value=timedelta(seconds=1), max_value=MAX_DURATION)


@given(now=clock, approved_at=st.none() | anytime, duration=spans, most=spans,
       state=st.none() | st.sampled_from(list(State)), seen=anytime, expires=st.none() | anytime)  # fmt: skip
@example(now=datetime(2026, 1, 1, tzinfo=UTC), approved_at=datetime(9999, 12, 30, tzinfo=UTC), duration=MAX_DURATION,
         most=MAX_DURATION, state=None, seen=datetime(2026, 1, 1, tzinfo=UTC), expires=None)  # fmt: skip
# an approved grant that becomes ACTIVE: the example that always reaches the assertion on its window below
@example(now=datetime(2026, 1, 1, 12, tzinfo=UTC), approved_at=datetime(2026, 1, 1, 11, 59, tzinfo=UTC),
         duration=timedelta(hours=1), most=MAX_DURATION, state=None, seen=datetime(2026, 1, 1, tzinfo=UTC),
         expires=None)  # fmt: skip
def test_decide_never_raises_and_never_exceeds_the_policy(
    now: datetime, approved_at: datetime | None, duration: timedelta, most: timedelta, state: State | None,
    seen: datetime, expires: datetime | None,
) -> None:  # fmt: skip
    grant = Grant("g", "access/grants/g.yaml", "access/grants/g.yaml:1", "debug", "User", "alice", "ClusterRole",
                  "view", "shop", duration, "why", "0" * 40)  # fmt: skip
    policy = EscalationPolicy("debug", "p:1", People(), People(users=frozenset({"bob"})), 1, (VIEW,), most, False)
    remembered = Remembered(state, seen, None, expires) if state is not None else None
    d = decide(grant, {"debug": policy}, Approval(Identity("alice"), (Identity("bob"),), approved_at), remembered, now)
    if d.state is State.ACTIVE and remembered is None:
        assert d.start is not None and d.expires is not None and d.expires - d.start <= most
