"""shard_of: a unit's shard is the same in every process, in range, and spread evenly over the shards."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.units.shards import DEFAULT_SHARDS, MAX_SHARDS, check_shards, shard_of

IDS = ["shop.web", "platform.infra", "a" * 63, "t-0123456789.team-a"]


@given(unit_id=st.text(), shards=st.integers(1, MAX_SHARDS))
@example(unit_id="\ud800", shards=16)  # a lone surrogate: no UTF-8 holds it, yet it must map somewhere
@example(unit_id="", shards=1)
def test_a_unit_s_shard_is_always_in_range(unit_id: str, shards: int) -> None:
    assert 0 <= shard_of(unit_id, shards) < shards


def test_a_unit_s_shard_is_the_same_in_every_process_whatever_its_hash_seed() -> None:
    # Python's hash() of a str changes with PYTHONHASHSEED: two replicas using it would disagree.
    code = f"from gitopsguard.units.shards import shard_of; print([shard_of(i, 16) for i in {IDS!r}])"
    env = {**os.environ}
    seen = set()
    for seed in ("1", "2", "3"):
        env["PYTHONHASHSEED"] = seed
        run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        seen.add(run.stdout)
    assert seen == {f"{[shard_of(i, 16) for i in IDS]}\n"}


def test_a_unit_s_shard_is_pinned_to_the_sha256_of_its_identity() -> None:
    # the first 8 bytes of sha256("shop.web"), big-endian, modulo the shards: a release that changed this
    # would move units to other shards at an upgrade, with replicas of both releases running side by side
    assert [shard_of("shop.web", n) for n in (16, 1000, 1024)] == [14, 582, 446]
    assert [shard_of(i, 16) for i in ("platform.infra", "t-0123456789.team-a")] == [13, 13]


def test_units_spread_evenly_over_the_shards() -> None:
    # 16,000 unit ids like the ones Units get (<namespace>.<name>): each shard expects 1,000. A chi-square
    # statistic over 16 shards (15 degrees of freedom) above 37.7 has a 0.1% chance for a uniform hash.
    counts = [0] * DEFAULT_SHARDS
    for team in range(160):
        for app in range(100):
            counts[shard_of(f"team-{team}.app-{app}", DEFAULT_SHARDS)] += 1
    expected = 16_000 / DEFAULT_SHARDS
    chi_square = sum((n - expected) ** 2 / expected for n in counts)
    assert chi_square < 37.7, counts


@pytest.mark.parametrize("shards", [0, -1, MAX_SHARDS + 1, True, 2.0, "16", None])
def test_a_shard_count_that_is_no_whole_number_in_range_is_refused(shards: object) -> None:
    with pytest.raises(ValueError, match="give a whole number from 1 to 1024"):
        check_shards(shards)


def chi_square_bound(freedom: int, z: float = 4.75) -> float:
    """The chi-square value a uniform spread exceeds with probability about 1e-6 (Wilson-Hilferty)."""
    return freedom * (1 - 2 / (9 * freedom) + z * math.sqrt(2 / (9 * freedom))) ** 3


@given(namespace=st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True), shards=st.integers(2, 64))
@example(namespace="team-a", shards=16)
def test_units_of_any_one_namespace_spread_evenly_over_any_shard_count(namespace: str, shards: int) -> None:
    # one team's 2,000 units must not pile onto a few shards, whatever the team is called and N is
    counts = [0] * shards
    for app in range(2_000):
        counts[shard_of(f"{namespace}.app-{app}", shards)] += 1
    expected = 2_000 / shards
    assert sum((n - expected) ** 2 / expected for n in counts) < chi_square_bound(shards - 1), counts
