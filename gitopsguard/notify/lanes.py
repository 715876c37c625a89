"""What one destination has waiting, one lane per namespace (pure; the caller brings the clock).

The platform's own news (namespace "") goes first, one message each. A tenant's namespace may send a few
messages at once (``burst``) and then one per ``interval``; whatever waits meanwhile goes out as one
digest ("120 new notices in namespace x"). So 5,000 non-compliant Pods make a handful of messages, and
a platform notice raised among them is the next one sent. All namespaces together are paced the same way
(``all_burst``, ``all_interval``): when many are waiting at once (a blocked commit touching 3,000
namespaces), the last message of the budget carries all of them. Every lane holds at most ``limit``
notices: the oldest are pushed out and counted (a digest says how many there were in all).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from gitopsguard.notify.mrkdwn import digest_text
from gitopsguard.notify.notices import Notice

PLATFORM = ""  # the lane of news about the cluster or a unit
SHOWN = 10  # notices listed by name in a digest
_EPSILON = 1e-9  # a token refilled by float arithmetic to 0.9999999999 is a token
_SHORTEST_WAIT = 0.001  # never ask the caller to wait less: a wait of 1e-16 s would spin


@dataclass(frozen=True)
class Pace:
    limit: int = 200  # notices waiting per lane
    burst: int = 5  # messages a namespace may send at once
    interval: float = 30.0  # seconds per further message of a namespace
    all_burst: int = 20  # messages all namespaces together may send at once
    all_interval: float = 5.0  # seconds per further message of all namespaces together


@dataclass(frozen=True)
class Batch:
    """One message to send: a notice, or a digest of a namespace's waiting notices."""

    namespace: str
    notices: tuple[Notice, ...]
    dropped: int = 0  # notices of these lanes pushed out before they were sent
    others: tuple[str, ...] = ()  # further namespaces whose notices this digest carries

    @property
    def total(self) -> int:
        return len(self.notices) + self.dropped

    def text(self) -> str:
        if self.total == 1:
            return self.notices[0].text()
        shown = [(n.title, n.subject) for n in self.notices[:SHOWN]]
        return digest_text((self.namespace, *self.others), self.total, shown)

    def describe(self) -> str:
        if self.total == 1:
            return f"{self.notices[0].event} for {self.notices[0].subject}"
        return f"a digest of {self.total} notices of namespace {', '.join((self.namespace, *self.others)[:5])}"


@dataclass
class _Lane:
    pending: deque[Notice]
    tokens: float
    stamp: float  # when tokens were last refilled
    since: float = 0.0  # when the oldest waiting notice arrived
    dropped: int = 0


@dataclass
class Lanes:
    pace: Pace
    _lanes: dict[str, _Lane] = field(default_factory=dict)
    _all: _Lane | None = None  # the budget of all namespaces together (its tokens and stamp only)

    def put(self, notice: Notice, now: float) -> bool:
        """Queue a notice; False when that pushed the lane's oldest out."""
        lane = self._lanes.get(notice.namespace)
        if lane is None:
            lane = self._lanes[notice.namespace] = _Lane(deque(maxlen=self.pace.limit), self.pace.burst, now)
        if not lane.pending:
            lane.since = now
        full = len(lane.pending) == self.pace.limit
        lane.dropped += full
        lane.pending.append(notice)
        return not full

    def empty(self) -> bool:
        return not any(lane.pending for lane in self._lanes.values())

    def take(self, now: float) -> Batch | float | None:
        """The next message to send; else the seconds until one is due; None when nothing waits."""
        platform = self._lanes.get(PLATFORM)
        if platform is not None and platform.pending:
            return Batch(PLATFORM, (platform.pending.popleft(),))
        for name, lane in list(self._lanes.items()):
            self._refill(lane, now)
            if not lane.pending and lane.tokens >= self.pace.burst - _EPSILON:
                del self._lanes[name]  # nothing waits and nothing is owed: forget the namespace
        ready = [(lane.since, n) for n, lane in self._lanes.items() if lane.pending and lane.tokens >= 1 - _EPSILON]
        if not ready:
            waits = [(1 - lane.tokens) * self.pace.interval for lane in self._lanes.values() if lane.pending]
            return max(min(waits), _SHORTEST_WAIT) if waits else None
        budget = self._budget(now)
        if budget.tokens < 1 - _EPSILON:
            return max((1 - budget.tokens) * self.pace.all_interval, _SHORTEST_WAIT)
        budget.tokens -= 1
        if budget.tokens < 1 - _EPSILON:  # the budget's last message: everyone waiting goes in it
            return self._drain(*[name for _, name in sorted(ready)])
        return self._drain(min(ready)[1])

    def _budget(self, now: float) -> _Lane:
        if self._all is None:
            self._all = _Lane(deque(), self.pace.all_burst, now)
        budget, elapsed = self._all, now - self._all.stamp
        refill = elapsed / self.pace.all_interval if self.pace.all_interval > 0 else float(self.pace.all_burst)
        budget.tokens, budget.stamp = min(self.pace.all_burst, budget.tokens + refill), now
        return budget

    def _refill(self, lane: _Lane, now: float) -> None:
        if self.pace.interval <= 0:
            lane.tokens = self.pace.burst
        else:
            lane.tokens = min(self.pace.burst, lane.tokens + (now - lane.stamp) / self.pace.interval)
        lane.stamp = now

    def _drain(self, *names: str) -> Batch:
        notices: list[Notice] = []
        dropped = 0
        for name in names:
            lane = self._lanes[name]
            lane.tokens -= 1
            notices += lane.pending
            dropped += lane.dropped
            lane.pending.clear()
            lane.dropped = 0
        return Batch(names[0], tuple(notices), dropped, names[1:])
