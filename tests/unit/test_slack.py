"""Slack delivery through the real slack_sdk against a local fake of Slack's Web API: once per notice,
retries on 429 and 5xx, failures recorded without secrets, team webhooks routed by namespace."""

from __future__ import annotations

import time

from gitopsguard.notify.notices import Notice
from gitopsguard.notify.slack import Failure, SlackNotifier, SlackSettings
from tests.fakeslack import TOKEN, WEBHOOK_PATH, FakeSlack, shared_tls, trusting


def notice(key: str = "k1", namespace: str = "") -> Notice:
    return Notice("deleted", "Deployment/shop/web", namespace, "Deleted after its grace period.", "GG3002 (labels)",
                  "Put it in Git.", key)  # fmt: skip


def test_the_same_notice_is_delivered_once_to_the_channel() -> None:
    fake = FakeSlack()
    with fake.serving() as url:
        slack = SlackNotifier(SlackSettings(token=TOKEN, channel="#ops", base_url=f"{url}/api/", min_interval=0))
        slack.notify([notice(), notice(), notice("k2")])
        slack.drain()
    assert len(fake.texts()) == 2 and fake.messages[0].channel == "#ops"
    assert "*Workload deleted by policy*: `Deployment/shop/web`" in fake.texts()[0]


def test_a_429_is_retried_after_retry_after_and_5xx_answers_are_retried() -> None:
    fake = FakeSlack(fail_next=[429, 500, 503])
    with fake.serving() as url:
        slack = SlackNotifier(SlackSettings(token=TOKEN, channel="#ops", base_url=f"{url}/api/", min_interval=0))
        started = time.monotonic()
        slack.notify([notice()])
        slack.drain()
    assert len(fake.texts()) == 1 and fake.attempts == 4 and slack.failures == 0
    assert fake.messages[0].at - started >= 1.0  # waited for Retry-After: 1


def test_a_failed_delivery_is_recorded_without_the_token_and_never_blocks_the_caller() -> None:
    fake = FakeSlack()
    problems: list[Failure] = []
    with fake.serving() as url:
        slack = SlackNotifier(SlackSettings(token="xoxb-wrong-secret", channel="#ops", base_url=f"{url}/api/",
                                            min_interval=0), on_failure=problems.append)  # fmt: skip
        started = time.monotonic()
        slack.notify([notice()])
        assert time.monotonic() - started < 0.1
        slack.drain()
    assert [str(p) for p in problems] == [
        "Slack (channel): deleted for Deployment/shop/web not delivered: invalid_auth"
    ]
    assert "xoxb" not in str(problems[0]) and problems[0].destination == "channel"


def test_a_team_webhook_from_the_namespace_gets_its_own_copy() -> None:
    fake, tls = FakeSlack(), shared_tls()
    with fake.serving() as url, fake.serving(tls) as team_url:
        settings = SlackSettings(token=TOKEN, channel="#ops", base_url=f"{url}/api/", min_interval=0,
                                 outbound=trusting(tls))  # fmt: skip
        slack = SlackNotifier(settings, team_webhook=lambda ns: f"{team_url}{WEBHOOK_PATH}" if ns == "shop" else None)
        slack.notify([notice(namespace="shop"), notice("k2", namespace="payments")])
        slack.drain()
    assert len(fake.texts()) == 2 and len(fake.texts(WEBHOOK_PATH)) == 1


def test_messages_to_one_destination_are_spaced() -> None:
    fake = FakeSlack()
    with fake.serving() as url:
        slack = SlackNotifier(SlackSettings(token=TOKEN, channel="#ops", base_url=f"{url}/api/", min_interval=0.3))
        slack.notify([notice(f"k{i}") for i in range(3)])
        slack.drain()
    gaps = [b.at - a.at for a, b in zip(fake.messages, fake.messages[1:], strict=False)]
    assert len(gaps) == 2 and min(gaps) >= 0.28
