"""Unmanaged tracking is bounded per namespace, whatever a tenant creates: those already tracked keep their
place (oldest first), the rest are reported untracked, with no deadline, and never deleted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.model import ObjectKey
from gitopsguard.plan import unmanaged
from gitopsguard.plan.unmanaged import Policy, judge

NOW = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
CAP = 5


@pytest.fixture(autouse=True)
def small_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(unmanaged, "MAX_TRACKED", CAP)


def pods(count: int) -> dict[ObjectKey, dict[str, object]]:
    return {ObjectKey("", "Pod", "shop", f"p{i:04d}"): {"metadata": {"name": f"p{i:04d}"}} for i in range(count)}


@given(count=st.integers(0, 40), known=st.lists(st.integers(0, 39), unique=True, max_size=12), delete=st.booleans())
@example(count=40, known=[39, 38, 37, 36, 35, 34], delete=True)
def test_at_most_the_cap_is_tracked_per_namespace_and_earlier_sightings_keep_their_place(
    count: int, known: list[int], delete: bool
) -> None:
    live = pods(count)
    keys = sorted(live)
    first_seen = {keys[i]: NOW - timedelta(hours=2, minutes=i) for i in known if i < count}
    verdicts = judge(live, Policy("shop", delete=delete, grace=timedelta(hours=1)), first_seen, NOW)
    assert len(verdicts) == count  # every one is reported
    tracked = [v for v in verdicts if v.tracked]
    assert len(tracked) == min(count, CAP)
    oldest_known = sorted(first_seen, key=lambda k: first_seen[k])[:CAP]
    assert set(oldest_known) <= {v.key for v in tracked}
    for verdict in verdicts:
        if not verdict.tracked:
            assert not verdict.delete and verdict.deadline is None
