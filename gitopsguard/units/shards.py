"""Which shard a unit belongs to (pure).

A unit belongs to one shard, ``shard_of(unit_id, shards)``, and each shard has one Lease
(``cluster/shardleases.py``, which also decides each replica's fair share of the shards); the replica holding
a shard's Lease is the only one that reconciles its units. The shard is a digest of the unit's identity
(sha256, never Python's ``hash``: that is salted per process, so two replicas would disagree on where a unit
lives). The number of shards is an operator setting, fixed for a
cluster's controller: changing it moves most units to another shard, so every replica must agree on it.
"""

from __future__ import annotations

import hashlib

DEFAULT_SHARDS = 16
# Each shard is a Lease renewed every few seconds by its holder: thousands of shards would be thousands of
# writes for nothing, as a shard holds any number of units. 1024 is far past any useful count of replicas.
MAX_SHARDS = 1024


def check_shards(shards: object) -> int:
    """``shards`` when it is a usable shard count (an int from 1 to MAX_SHARDS); else ValueError."""
    if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= MAX_SHARDS:
        raise ValueError(f"shards {shards!r}: give a whole number from 1 to {MAX_SHARDS} (the same on every replica)")
    return shards


def _digest(text: str) -> int:
    # surrogatepass: an identity is whatever str it is, even one no UTF-8 can hold, and maps all the same
    return int.from_bytes(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:8], "big")


def shard_of(unit_id: str, shards: int) -> int:
    """The shard (0 .. shards-1) of the unit with this identity; the same in every process and release."""
    return _digest(unit_id) % check_shards(shards)
