"""Notice floods (issue 21, break 3): a tenant's thousands of non-compliant Pods become a few digests, a
platform notice raised meanwhile is the next message sent, and every queue and memory is bounded."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter

from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.notify.lanes import PLATFORM, Batch, Lanes, Pace
from gitopsguard.notify.notices import Notice
from gitopsguard.notify.slack import Failure, SlackNotifier, SlackSettings
from tests.fakeslack import TOKEN, WEBHOOK_PATH, FakeSlack, shared_tls, trusting


def notice(key: str, namespace: str = "", subject: str = "Deployment/shop/web") -> Notice:
    return Notice("live-violation", subject, namespace, "Reported.", "GG1103", "Fix it.", key)


def test_a_platform_notice_raised_during_5000_tenant_violations_reaches_slack_within_5_seconds() -> None:
    fake = FakeSlack()
    with fake.serving() as url:
        slack = SlackNotifier(SlackSettings(token=TOKEN, channel="#ops", base_url=f"{url}/api/"))  # 1 s apart
        for i in range(5000):  # as the live scan hands them over: a few at a time
            slack.notify([notice(f"pod-{i}", "evil", f"Pod/evil/p{i}")])
        started = time.monotonic()
        slack.notify([notice("brake", "", "unit apps")])
        while not any("unit apps" in t for t in fake.texts()) and time.monotonic() - started < 5:
            time.sleep(0.02)
        took = time.monotonic() - started
        slack.drain(timeout=5)  # the rest follow as one digest
    assert any("unit apps" in t for t in fake.texts()) and took < 5, took
    tenant = [t for t in fake.texts() if "unit apps" not in t]
    assert len(tenant) <= Pace().burst, tenant  # not 5,000 messages: a few, then one per interval
    told = [int(m.group(1)) if (m := re.match(r"\*(\d+) new notices in namespace `evil`\*", t)) else 1 for t in tenant]
    assert sum(told) == 5000, told  # every violation is counted in some message


def test_a_digest_counts_every_notice_even_those_pushed_out_of_a_full_queue() -> None:
    fake, drops = FakeSlack(), Counter[str]()
    with fake.serving() as url:
        settings = SlackSettings(token=TOKEN, channel="#ops", base_url=f"{url}/api/", min_interval=0,
                                 pace=Pace(limit=5, burst=1, interval=0.5))  # fmt: skip
        slack = SlackNotifier(settings, on_drop=lambda where, n: drops.update({where: n}))
        slack.notify([notice("first", "evil", "Pod/evil/first")])
        slack.drain()
        slack.notify([notice(f"pod-{i}", "evil", f"Pod/evil/p{i}") for i in range(100)])
        slack.drain(timeout=5)
    assert len(fake.texts()) == 2 and "*100 new notices in namespace `evil`*" in fake.texts()[1]
    assert "Pod/evil/p99" in fake.texts()[1] and "…and 95 more" in fake.texts()[1]
    assert drops == {"channel": 95, "team/evil": 95}  # the team destination queues its own copies


def test_the_memory_of_sent_notices_is_bounded_and_forgets_the_oldest() -> None:
    fake = FakeSlack()
    with fake.serving() as url:
        settings = SlackSettings(token=TOKEN, channel="#ops", base_url=f"{url}/api/", min_interval=0, remember=3)
        slack = SlackNotifier(settings)
        for key in ["k1", "k2", "k3", "k4", "k4", "k1"]:
            slack.notify([notice(key, subject=key)])
            slack.drain()
    assert [t.split("`")[1] for t in fake.texts()] == ["k1", "k2", "k3", "k4", "k1"]


arrivals = st.lists(st.tuples(st.sampled_from([PLATFORM, "a", "b", "c"]), st.floats(0, 5)), max_size=300)


@given(arrivals, st.integers(1, 4), st.sampled_from([0.5, 1.0, 3.0]))
@example([("a", 0.0)] * 300 + [(PLATFORM, 0.0)], 2, 1.0)
def test_lanes_never_lose_a_notice_uncounted_send_the_platform_first_and_pace_each_namespace(
    puts: list[tuple[str, float]], burst: int, interval: float
) -> None:
    """The general rule, on the pure lanes with a made-up clock: every notice is sent or counted in a
    digest; a waiting platform notice is always the next message; a namespace sends at most ``burst``
    messages at once and then one per ``interval``."""
    lanes, now, sent = Lanes(Pace(limit=50, burst=burst, interval=interval)), 0.0, list[tuple[float, Batch]]()
    for namespace, gap in puts:
        now += gap
        lanes.put(notice(f"k{len(sent)}-{now}", namespace), now)
        while isinstance(batch := lanes.take(now), Batch):
            sent.append((now, batch))
    while (got := lanes.take(now)) is not None:
        if isinstance(got, Batch):
            sent.append((now, got))
        else:
            assert got > 0
            now += got
    assert sum(b.total for _, b in sent) == len(puts)
    for namespace in {"a", "b", "c"}:
        times = [t for t, b in sent if b.namespace == namespace]
        for i, t in enumerate(times):
            window = [u for u in times[: i + 1] if u > t - 10 * interval]
            assert len(window) <= burst + 10 + 1e-9, (namespace, times)


def test_a_waiting_platform_notice_goes_before_every_tenant_digest() -> None:
    lanes = Lanes(Pace())
    for i in range(1000):
        lanes.put(notice(f"p{i}", "evil"), 0.0)
    lanes.put(notice("platform"), 0.0)
    first = lanes.take(0.0)
    assert isinstance(first, Batch) and first.namespace == PLATFORM


def test_an_idle_team_destination_ends_its_thread_and_a_later_notice_starts_a_new_one() -> None:
    fake, tls = FakeSlack(), shared_tls()
    with fake.serving(tls) as url:
        settings = SlackSettings(min_interval=0, outbound=trusting(tls), team_idle=0.3)
        slack = SlackNotifier(settings, team_webhook=lambda _: f"{url}{WEBHOOK_PATH}")
        slack.notify([notice("first", "quiet-team")])
        slack.drain()
        deadline = time.monotonic() + 5
        while "slack team/quiet-team" in team_threads() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "slack team/quiet-team" not in team_threads()
        slack.notify([notice("second", "quiet-team")])
        slack.drain()
    assert len(fake.texts(WEBHOOK_PATH)) == 2


def test_team_destinations_are_capped_and_the_one_past_the_cap_is_reported() -> None:
    fake, failures = FakeSlack(), list[Failure]()
    with fake.serving() as url:
        settings = SlackSettings(token=TOKEN, channel="#ops", base_url=f"{url}/api/", min_interval=0, max_teams=2)
        slack = SlackNotifier(settings, on_failure=failures.append)
        slack.notify([notice(f"k-{ns}", ns, f"Pod/{ns}/p") for ns in ("a", "b", "c")])
        slack.drain()
    assert len(fake.texts()) == 3  # the platform channel hears all three
    assert [(f.destination, f.why) for f in failures] == [("team/c", "too many teams at once")]


def team_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("slack team/")]


def test_a_tenant_churning_notices_cannot_make_the_platform_notices_repeat() -> None:
    fake = FakeSlack()
    with fake.serving() as url:
        settings = SlackSettings(token=TOKEN, channel="#ops", base_url=f"{url}/api/", min_interval=0, remember=3,
                                 pace=Pace(interval=0))  # fmt: skip
        slack = SlackNotifier(settings)
        slack.notify([notice("brake", "", "unit apps")])
        slack.notify([notice(f"churn-{i}", "evil", f"Pod/evil/p{i}") for i in range(20)])
        slack.notify([notice("brake", "", "unit apps")])
        slack.drain()
    assert sum("unit apps" in t for t in fake.texts()) == 1


def test_notices_with_bogus_namespaces_are_counted_and_reported_once_not_once_each() -> None:
    """A commit can name any namespace (its revision is blocked before the API server sees it): such
    notices never reach a team lookup, and their refusal is one audit record, not thousands."""
    failures, drops, asked = list[Failure](), Counter[str](), list[str]()

    def lookup(namespace: str) -> str | None:
        asked.append(namespace)
        return None

    slack = SlackNotifier(SlackSettings(min_interval=0), team_webhook=lookup, on_failure=failures.append,
                          on_drop=lambda where, n: drops.update({where: n}))  # fmt: skip
    bogus = ["../../kube-system/secrets/x", "Evil", "a" * 64, "x/y", "-x", "ns\n", "ünï"]
    slack.notify([notice(f"k{i}", bogus[i % len(bogus)], f"Pod/p{i}") for i in range(3000)])
    slack.drain()
    assert asked == [] and drops == {"team/-": 3000}
    assert [(f.destination, f.why) for f in failures] == [("team/-", "its namespace is not a valid name")]


def test_a_blocked_commit_touching_300_namespaces_makes_a_bounded_number_of_messages() -> None:
    """A bad commit is not one tenant: its notices span namespaces, so the per-namespace pace alone would
    let through one message per namespace. All namespaces together share a budget too."""
    fake = FakeSlack()
    with fake.serving() as url:
        slack = SlackNotifier(SlackSettings(token=TOKEN, channel="#ops", base_url=f"{url}/api/", min_interval=0))
        slack.notify([notice(f"blocked-{i}", f"team-{i}", f"unit apps @ {i}") for i in range(300)])
        slack.drain(timeout=20)
    assert len(fake.texts()) <= 22, len(fake.texts())  # the default budget: 20 at once, then one per 5 s
    told = [int(m.group(1)) if (m := re.match(r"\*(\d+) new notices in", t)) else 1 for t in fake.texts()]
    assert sum(told) == 300
    assert any(re.match(r"\*\d+ new notices in \d+ namespaces \(`team-\d+`, ", t) for t in fake.texts())


many_namespaces = st.lists(st.tuples(st.integers(0, 40), st.floats(0, 2)), max_size=300)


@given(many_namespaces, st.integers(1, 6), st.sampled_from([0.5, 1.0, 2.0]))
@example([(i, 0.0) for i in range(41)] * 5, 3, 1.0)
def test_all_namespaces_together_never_send_more_than_their_shared_budget(
    puts: list[tuple[int, float]], all_burst: int, all_interval: float
) -> None:
    """The general rule across namespaces: in any window, tenant messages are at most the shared burst
    plus one per ``all_interval``; and still every notice is sent or counted."""
    pace = Pace(limit=50, burst=2, interval=0.5, all_burst=all_burst, all_interval=all_interval)
    lanes, now, sent = Lanes(pace), 0.0, list[tuple[float, Batch]]()
    for number, gap in puts:
        now += gap
        lanes.put(notice(f"k{len(sent)}-{now}", f"ns-{number}"), now)
        while isinstance(batch := lanes.take(now), Batch):
            sent.append((now, batch))
    while (got := lanes.take(now)) is not None:
        if isinstance(got, Batch):
            sent.append((now, got))
        else:
            now += got
    assert sum(b.total for _, b in sent) == len(puts)
    times = [t for t, _ in sent]
    for i, t in enumerate(times):
        window = [u for u in times[: i + 1] if u > t - 10 * all_interval]
        assert len(window) <= all_burst + 10 + 1e-9, times
