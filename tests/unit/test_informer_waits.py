"""How long a watch waits after a failure: the server's Retry-After when it is worth retrying, else a backoff."""

from __future__ import annotations

import math

from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.cluster.informer import MAX_BACKOFF, wait_after
from gitopsguard.errors import ForbiddenError, TooManyRequestsError


def test_a_throttled_watch_waits_as_long_as_the_server_asked() -> None:
    assert wait_after(TooManyRequestsError("list Pods: throttled", delay=7.0), failures=1) == 7.0


def test_a_refusal_waiting_cannot_cure_backs_off_and_ignores_any_delay() -> None:
    refused = ForbiddenError("list Pods: forbidden")
    refused.delay = 25.0  # a delay on an error that does not pass by waiting is not a reason to wait it
    assert wait_after(refused, failures=1) <= 0.5


@given(st.floats(allow_nan=True, allow_infinity=True))
@example(math.nan)
@example(math.inf)
@example(-1.0)
@example(1e308)
def test_a_hostile_delay_never_stalls_or_spins_a_watch(delay: float) -> None:
    wait = wait_after(TooManyRequestsError("list Pods: throttled", delay=delay), failures=3)
    assert 0.1 <= wait <= MAX_BACKOFF
