"""A Lease renewal counts only when others can see it: LeaderElector on the real API server.

The API server answers 200 to a write that changes nothing and stores nothing (same resourceVersion). A
replica whose wall clock is stuck would write the same renewTime again and again: others see no renewal and
take the lease over after its duration, while the stuck one, told 200, would go on acting. And a renewal's
answer can come late: the lease counts from when the write was sent, never from when it was answered."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client

from gitopsguard.cluster.lease import LeaderElector
from gitopsguard.cluster.rest import RawApi

pytestmark = pytest.mark.integration
FROZEN = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_replica_whose_wall_clock_is_stuck_never_holds_the_lease_beside_another(
    admin_api: client.ApiClient, namespace: str
) -> None:
    raw = RawApi(admin_api)
    stuck = LeaderElector(raw, namespace, "l", me="stuck", lease_seconds=2, retry_seconds=0.2, renew_deadline=1.5,
                          wall=lambda: FROZEN)  # fmt: skip
    other = LeaderElector(raw, namespace, "l", me="other", lease_seconds=2, retry_seconds=0.2, renew_deadline=1.5)
    assert stuck.try_acquire_or_renew()
    both = []
    end = time.monotonic() + 5  # past two lease durations
    while time.monotonic() < end:
        stuck.try_acquire_or_renew()
        taken = other.try_acquire_or_renew()
        if taken and time.monotonic() < stuck.renewed_at + 1.5:
            both.append(time.monotonic())
        time.sleep(0.2)
    assert not both  # "other" took it only when "stuck" no longer believed it held it, or never


class SlowAnswers(RawApi):
    """Writes land at once, their answers arrive ``delay`` seconds later (a congested network)."""

    delay = 1.0

    def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        answer = super().request(method, path, **kwargs)
        if method in ("PUT", "POST"):
            time.sleep(self.delay)
        return answer


def test_a_renewal_counts_from_when_it_was_sent_not_from_its_late_answer(
    admin_api: client.ApiClient, namespace: str
) -> None:
    elector = LeaderElector(SlowAnswers(admin_api), namespace, "l", me="slow", lease_seconds=4, renew_deadline=2)
    sent = time.monotonic()
    assert elector.try_acquire_or_renew()
    assert time.monotonic() - sent >= SlowAnswers.delay
    assert elector.renewed_at <= sent + 0.5  # the GET before it is quick; the answer's second is not counted
