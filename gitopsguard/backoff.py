"""How long a loop waits before its next attempt, by what the last error says of itself (``errors.py``).

A retryable failure (throttled, the API server away, a connection cut) is tried again soon: after the
server's ``delay`` when it gave one, else after a backoff that doubles from one second up to the loop's
interval, with jitter so that replicas restarted together do not ask again in step. Anything else (an
object the server refuses, RBAC we lack, a bad commit) cannot succeed unchanged: the loop reports it once
and waits for the next change or its interval instead of asking again and again.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from gitopsguard.errors import GitOpsGuardError

# A server that asks for no wait at all (Retry-After: 0) still gets this much, so that a loop never spins.
SHORTEST = 0.1


def retry_delay(failures: int, interval: float) -> float:
    """Seconds to wait after ``failures`` failures in a row: 1, 2, 4, ... up to the interval. The exponent is
    capped first, so the thousandth failure in a row waits as long as the sixth (2.0 ** 1024 overflowed and
    ended the process, grant expiry with it)."""
    if failures <= 0:
        return interval
    return min(float(2 ** min(failures - 1, 30)), interval)


def jittered(failures: int, interval: float, *, draw: Callable[[float, float], float] = random.uniform) -> float:
    """``retry_delay`` with jitter: between half of it and all of it; the interval itself after no failure."""
    if failures <= 0:
        return interval
    return retry_delay(failures, interval) * draw(0.5, 1.0)


def worth_retrying(error: BaseException | None) -> bool:
    """Whether the error says the same attempt may succeed later unchanged; one that does not say never does."""
    return isinstance(error, GitOpsGuardError) and error.retryable


def next_wait(error: BaseException | None, failures: int, backoff: Callable[[int], float]) -> float:
    """Seconds to wait before the next attempt after ``error`` (None: it succeeded). ``failures`` counts the
    retryable failures in a row, this one included; ``backoff(n)`` is the wait after n of them, and
    ``backoff(0)`` the loop's interval, which no wait exceeds."""
    interval = backoff(0)
    if not worth_retrying(error):
        return interval
    delay = error.delay if isinstance(error, GitOpsGuardError) else None
    if delay is not None and math.isfinite(delay):  # the server said how long: as long, within our interval
        return min(max(delay, SHORTEST), interval)
    return min(backoff(max(failures, 1)), interval)
