"""The loop's retry backoff: it grows after each failed pass, is capped by the interval, and never overflows.

A controller that fails pass after pass (the API server down for an hour, a broken head) must keep running:
grant expiry and drift repair live in the same process.
"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.backoff import retry_delay


@given(failures=st.integers(min_value=0, max_value=10**12), interval=st.floats(min_value=0.001, max_value=1e6))
@example(failures=1025, interval=30.0)
@example(failures=10**12, interval=30.0)
def test_retry_delay_is_finite_positive_and_capped_by_the_interval(failures: int, interval: float) -> None:
    delay = retry_delay(failures, interval)
    assert 0 < delay <= interval
    if failures:  # a success waits the full interval; after a failure, never shorter for one more
        assert retry_delay(failures + 1, interval) >= delay


def test_retry_delay_doubles_from_one_second_until_the_interval() -> None:
    assert [retry_delay(n, 30.0) for n in range(8)] == [30.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
