"""A bad destination fails alone (issue 21, breaks 1 and 2): a team whose Secret cannot be read or decoded,
or whose webhook rate-limits for a day, neither silences nor stalls the platform channel; the failure is
reported, naming the destination and never the URL; a genuine bug in a delivery thread ends the process
(lifeline) instead of silencing it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from gitopsguard import lifeline
from gitopsguard.errors import ClusterError
from gitopsguard.notify.notices import Notice
from gitopsguard.notify.retry import retry_after
from gitopsguard.notify.slack import Failure, RetryPolicy, SlackNotifier, SlackSettings
from tests.fakeslack import TOKEN, WEBHOOK_PATH, FakeSlack, shared_tls, trusting


def notice(key: str, namespace: str = "", subject: str = "Deployment/shop/web") -> Notice:
    return Notice("deleted", subject, namespace, "Deleted.", "GG3002 (labels)", "Put it in Git.", key)


def arrives(fake: FakeSlack, text: str, within: float) -> float | None:
    """Seconds until a platform-channel message holding ``text`` reached the fake, or None."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        if any(text in t for t in fake.texts()):
            return time.monotonic() - started
        time.sleep(0.02)
    return None


def platform_after_team(
    team_webhook: Callable[[str], str | None], fake: FakeSlack, url: str, **extra: Any
) -> tuple[float | None, list[Failure], SlackNotifier]:
    """A team notice, then a platform notice; returns (seconds until the platform's arrived, failures)."""
    failures: list[Failure] = []
    settings_ = SlackSettings(token=TOKEN, channel="#ops", base_url=f"{url}/api/", min_interval=0,
                              outbound=trusting(shared_tls()), **extra)  # fmt: skip
    slack = SlackNotifier(settings_, team_webhook=team_webhook, on_failure=failures.append)
    slack.notify([notice("team", "evil", "Pod/evil/p")])
    time.sleep(0.3)
    slack.notify([notice("platform", "", "unit apps")])
    return arrives(fake, "unit apps", 5), failures, slack


def test_a_team_secret_that_is_not_utf8_is_refused_and_the_platform_still_hears() -> None:
    fake = FakeSlack()
    with fake.serving() as url:
        took, failures, slack = platform_after_team(lambda ns: b"\xff\xfe".decode(), fake, url)
        slack.notify([notice("platform-2", "", "unit later")])
        assert arrives(fake, "unit later", 5) is not None  # still delivering: the thread lives
        slack.drain()
    assert took is not None  # within 5 s
    assert [f.destination for f in failures] == ["team/evil"] and "UnicodeDecodeError" in failures[0].why


def test_an_api_error_while_reading_a_team_secret_fails_that_team_alone() -> None:
    def unreachable(namespace: str) -> str | None:
        raise ClusterError("https://127.0.0.1:1: the API server is unreachable")

    fake = FakeSlack()
    with fake.serving() as url:
        took, failures, slack = platform_after_team(unreachable, fake, url)
        slack.drain()
    assert took is not None  # within 5 s
    assert [(f.destination, f.what) for f in failures] == [("team/evil", "deleted for Pod/evil/p")]


def test_a_team_webhook_asking_for_a_day_of_retry_after_stalls_only_itself() -> None:
    fake, tls = FakeSlack(stuck={WEBHOOK_PATH: (429, {"Retry-After": "86400"})}), shared_tls()
    with fake.serving() as url, fake.serving(tls) as team_url:
        policy = RetryPolicy(timeout=2, retries=2, retry_after_cap=0.2)
        started = time.monotonic()
        took, failures, slack = platform_after_team(lambda _: f"{team_url}{WEBHOOK_PATH}", fake, url, retry=policy)
        slack.drain(timeout=10)
        finished = time.monotonic() - started
    assert took is not None  # within 5 s
    assert fake.paths.count(WEBHOOK_PATH) == 3  # bounded: the first attempt and two retries
    assert finished < 5  # Retry-After honoured up to the cap only
    assert [str(f) for f in failures] == ["Slack (team/evil): deleted for Pod/evil/p not delivered: HTTP 429 "
                                          "ratelimited, 3 attempts"]  # fmt: skip


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(["raise", "undecodable", "stuck-429", "stuck-500", "redirect", "refused", "garbage-url"]))
@example("stuck-429")
def test_whatever_a_team_destination_does_the_platform_notice_arrives_within_seconds(behaviour: str) -> None:
    """The general rule: each destination has its own queue and thread; none can hold up another."""
    stuck = {"stuck-429": (429, {"Retry-After": "86400"}), "stuck-500": (500, {}),
             "redirect": (302, {"Location": "https://169.254.169.254/"})}  # fmt: skip
    fake, tls = FakeSlack(stuck={WEBHOOK_PATH: stuck[behaviour]} if behaviour in stuck else {}), shared_tls()
    with fake.serving() as url, fake.serving(tls) as team_url:

        def team(namespace: str) -> str | None:
            if behaviour == "raise":
                raise RuntimeError("a lookup that fails in a way nobody foresaw")
            if behaviour == "undecodable":
                return b"\xc3\x28".decode()
            if behaviour == "refused":
                return "https://localhost:1/services/x"
            return "\x00not a url" if behaviour == "garbage-url" else f"{team_url}{WEBHOOK_PATH}"

        took, _, _ = platform_after_team(team, fake, url, retry=RetryPolicy(retry_after_cap=30))
    assert took is not None, behaviour  # within 5 s, the number


def test_a_bug_in_a_delivery_thread_ends_the_process_through_the_lifeline() -> None:
    """Not a delivery failure but our own bug (here: a notice that is not text): the thread must not
    carry on quietly, nor die quietly."""
    died = threading.Event()
    previous = threading.excepthook
    lifeline.install(exit_process=lambda _: died.set())
    try:
        fake = FakeSlack()
        with fake.serving() as url:
            slack = SlackNotifier(SlackSettings(token=TOKEN, channel="#ops", base_url=f"{url}/api/", min_interval=0))
            # a key of no allowed type, on purpose: the notifier thread must die loudly on it
            slack.notify([Notice("deleted", None, "", "w", "y", "a", "k")])  # type: ignore[arg-type]
            assert died.wait(5)
    finally:
        threading.excepthook = previous
        lifeline.DEAD.clear()


@given(st.one_of(st.none(), st.text(max_size=30), st.integers(-(10**30), 10**30).map(str), st.floats().map(str)))
@example("86400")
@example("nan")
@example("-1")
@example("1e309")
def test_any_retry_after_is_honoured_for_at_most_the_cap(value: str | None) -> None:
    """The general rule behind the day-long stall: whatever a destination answers, the wait is bounded."""
    assert 0.0 <= retry_after(value, 60.0) <= 60.0
