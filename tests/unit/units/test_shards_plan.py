"""Each replica's round (cluster.shardleases.plan_shards, pure): up to its fair share, never over it for
long, and replicas that agree on who is alive end with every shard held by exactly one of them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitopsguard.cluster.shardleases import ShardTiming, ShardView, fair_share, plan_shards


def test_the_fair_share_is_the_shards_over_the_replicas_rounded_up() -> None:
    assert [fair_share(16, n) for n in (0, 1, 2, 3, 5, 16, 17)] == [16, 16, 8, 6, 4, 1, 1]


def test_a_replica_takes_only_free_shards_and_only_up_to_its_share() -> None:
    plan = plan_shards(ShardView(16, frozenset({1, 2}), frozenset(range(8, 16)), replicas=3), "a")
    assert set(plan.acquire) <= set(range(8, 16)) and len(plan.acquire) == 4 and not plan.release


def test_a_replica_over_its_share_gives_back_the_excess_and_takes_nothing() -> None:
    # scale-up from 2 to 3: each of the two holds 8, the share is now 6
    plan = plan_shards(ShardView(16, frozenset(range(8)), frozenset(range(14, 16)), replicas=3), "a")
    assert len(plan.release) == 2 and set(plan.release) <= set(range(8)) and not plan.acquire


def test_a_replica_at_its_share_neither_takes_nor_gives_back() -> None:
    assert plan_shards(ShardView(16, frozenset(range(6)), frozenset(range(6, 16)), replicas=3), "a") == plan_shards(
        ShardView(16, frozenset(range(6)), frozenset(), replicas=3), "a"
    )


def simulate(shards: int, names: list[str], start: dict[int, str], order: list[int]) -> dict[int, str]:
    """Rounds of replicas that agree on who is alive, one replica at a time (in ``order``), each seeing the
    others' last writes: what they hold afterwards."""
    holder = dict(start)
    for index in order:
        me = names[index % len(names)]
        mine = frozenset(s for s, h in holder.items() if h == me)
        free = frozenset(s for s in range(shards) if s not in holder)
        plan = plan_shards(ShardView(shards, mine, free, len(names)), me)
        for shard in plan.release:
            del holder[shard]
        for shard in plan.acquire:
            assert shard not in holder, f"{me} planned to take shard {shard} held by {holder[shard]}"
            holder[shard] = me
    return holder


@given(
    shards=st.integers(1, 64),
    replicas=st.integers(1, 8),
    data=st.data(),
)
def test_replicas_that_agree_on_who_is_alive_settle_with_every_shard_held_once_within_its_share(
    shards: int, replicas: int, data: st.DataObject
) -> None:
    names = [f"r{i}" for i in range(replicas)]
    start = data.draw(st.dictionaries(st.integers(0, shards - 1), st.sampled_from(names)))  # any leftover state
    order = data.draw(st.permutations(list(range(replicas))))
    holder = simulate(shards, names, start, list(order) * 3)  # three rounds each, in any order
    assert set(holder) == set(range(shards))
    share = fair_share(shards, replicas)
    assert all(sum(h == name for h in holder.values()) <= share for name in names)
    assert simulate(shards, names, holder, list(range(replicas))) == holder  # settled: another round changes nothing


@pytest.mark.parametrize(
    ("lease", "deadline", "retry"),
    [(15, 14.0, 2.0), (15, 13.0, 2.0), (4, 2.5, 3.0), (4, 2.5, 0.0), (1, 0.5, 0.5)],
)
def test_timings_where_a_claim_could_outlive_what_others_wait_are_refused(
    lease: int, deadline: float, retry: float
) -> None:
    # others take over lease - retry after they saw the last renewal; our claim runs renew deadline past it
    with pytest.raises(ValueError, match="need 0 < retry < renew deadline < lease - retry"):
        ShardTiming(lease, deadline, retry)


def test_client_go_s_timing_leaves_three_seconds_between_the_last_claim_and_the_first_takeover() -> None:
    assert ShardTiming().spare == 3.0 and ShardTiming(4, 2.5, 0.5).spare == 1.0
