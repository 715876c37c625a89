"""backoff.py: the loops wait by what the last error says of itself. A retryable error is tried again after the
server's delay (bounded by the loop's interval and never zero) or a jittered backoff; any other error waits the
interval, however many times in a row it came. The errors that reach the loop keep what their causes said."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.backoff import SHORTEST, jittered, next_wait, retry_delay, worth_retrying
from gitopsguard.cluster.apply import Refused, refusal
from gitopsguard.errors import (
    ApplyError,
    ClusterError,
    ConflictError,
    ForbiddenError,
    GitOpsGuardError,
    InvalidError,
    NotFoundError,
    PolicyError,
    RenderError,
    ServerTimeoutError,
    SourceError,
    TooManyRequestsError,
    UnavailableError,
    UnreachableError,
)
from gitopsguard.heads import Head, _worth_retrying
from gitopsguard.model import ObjectKey
from gitopsguard.source import Revision
from gitopsguard.sync import RolledBackError

INTERVAL = 30.0
PERMANENT = [GitOpsGuardError, ClusterError, NotFoundError, ConflictError, ForbiddenError, InvalidError, RenderError,
             PolicyError, SourceError, ApplyError]  # fmt: skip
PASSING = [TooManyRequestsError, ServerTimeoutError, UnavailableError, UnreachableError]
KEY = ObjectKey("", "ConfigMap", "shop", "web")


def backoff(failures: int) -> float:
    return jittered(failures, INTERVAL)


@pytest.mark.parametrize("kind", PERMANENT)
@given(failures=st.integers(min_value=0, max_value=10**9))
def test_an_error_that_does_not_pass_by_waiting_waits_the_interval(kind: type[GitOpsGuardError], failures: int) -> None:
    assert not worth_retrying(kind("x"))
    assert next_wait(kind("x"), failures, backoff) == INTERVAL


@pytest.mark.parametrize("kind", PASSING)
@given(failures=st.integers(min_value=1, max_value=10**9))
@example(failures=1025)
def test_an_error_that_passes_is_tried_again_after_a_jittered_backoff(kind: type[ClusterError], failures: int) -> None:
    wait = next_wait(kind("x"), failures, backoff)
    assert retry_delay(failures, INTERVAL) / 2 <= wait <= retry_delay(failures, INTERVAL) <= INTERVAL


@given(delay=st.floats(allow_nan=True, allow_infinity=True), failures=st.integers(min_value=1, max_value=50))
@example(delay=2.0, failures=3)  # the server asked for 2 s: exactly that
@example(delay=0.0, failures=1)
@example(delay=-5.0, failures=1)
@example(delay=1e308, failures=1)
@example(delay=math.nan, failures=1)
def test_the_servers_delay_is_honoured_within_the_interval_and_never_zero(delay: float, failures: int) -> None:
    wait = next_wait(TooManyRequestsError("x", delay=delay), failures, backoff)
    assert SHORTEST <= wait <= INTERVAL
    if math.isfinite(delay) and SHORTEST <= delay <= INTERVAL:
        assert wait == delay


def test_no_error_waits_the_interval() -> None:
    assert next_wait(None, 0, backoff) == INTERVAL
    assert not worth_retrying(ValueError("a bug"))  # not ours: it says nothing, so it never passes by waiting


def test_a_batch_is_worth_retrying_only_when_every_refusal_in_it_is() -> None:
    throttled = Refused(KEY, TooManyRequestsError("throttled", delay=3.0))
    away = Refused(KEY, UnavailableError("away"))
    invalid = Refused(KEY, InvalidError("data.n: must be a string"))
    both = refusal("2 refused", [throttled, away])
    assert both.retryable and both.delay == 3.0  # the longest wait the server asked for
    assert not refusal("2 refused", [throttled, invalid]).retryable  # the invalid one fails again, whenever
    assert not refusal("none", []).retryable


def test_a_rolled_back_revision_keeps_whether_its_failure_passes() -> None:
    failure = refusal("1 refused", [Refused(KEY, TooManyRequestsError("throttled", delay=2.0))])
    rolled_back = RolledBackError(failure, ())
    assert rolled_back.retryable and rolled_back.delay == 2.0
    assert not RolledBackError(ApplyError("refused"), ()).retryable


def test_the_head_worker_retries_failed_fetches_and_passing_errors_not_refused_commits() -> None:
    revision = Revision("a" * 40, Path("/nonexistent"), "summary", "message")
    assert _worth_retrying(Head(None, refusal=SourceError("git fetch failed: could not resolve host")))
    assert _worth_retrying(Head(revision, refusal=UnavailableError("Namespaces: the API server is away")))
    assert not _worth_retrying(Head(revision, refusal=RenderError("apps/a.yaml:3: not valid YAML")))
    assert not _worth_retrying(Head(revision, refusal=ForbiddenError("Namespaces: list is forbidden")))
    assert not _worth_retrying(Head(revision))
