"""The informer's wait between failures: bounded, growing, never zero (a dead server is not hammered)."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.cluster.informer import FIRST_BACKOFF, MAX_BACKOFF, backoff


@given(st.integers(min_value=1, max_value=10**12))
@example(1)
@example(10**12)  # a process that failed for years must not overflow into an exception or an endless wait
def test_the_backoff_between_failures_is_bounded_and_never_zero(failures: int) -> None:
    delay = backoff(failures)
    assert FIRST_BACKOFF / 2 <= delay <= MAX_BACKOFF


def test_the_backoff_grows_with_failures_in_a_row() -> None:
    assert max(backoff(1) for _ in range(50)) <= FIRST_BACKOFF
    assert min(backoff(8) for _ in range(50)) >= min(MAX_BACKOFF, FIRST_BACKOFF * 2**7) / 2
