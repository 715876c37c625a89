"""One place notices go (the platform channel, the platform webhook, one team's webhook), with a queue
and a delivery thread of its own: a destination that is slow, rate-limited or broken delays only itself.

A message that cannot be delivered is given up and reported (``Failure``): the thread carries on with the
next. What is not delivery (choosing the next message, writing it) is not caught: a bug there ends the
thread, and ``lifeline`` ends the process with it, loudly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError

from gitopsguard.errors import GitOpsGuardError
from gitopsguard.notify.lanes import Batch, Lanes, Pace
from gitopsguard.notify.notices import Notice


@dataclass(frozen=True)
class Failure:
    """A message not delivered: to which destination (never its URL or token), what, and why."""

    destination: str  # "channel", "webhook" or "team/<namespace>"
    what: str
    why: str

    def __str__(self) -> str:
        return f"Slack ({self.destination}): {self.what} not delivered: {self.why}"


@dataclass(frozen=True)
class Reporter:
    failed: Callable[[Failure], None]
    dropped: Callable[[str, int], None]  # (destination, how many notices were pushed out of a full queue)


def reason(error: Exception) -> str:
    """Why a send failed, in words that hold no secret: our own messages, Slack's error code, or the kind."""
    if isinstance(error, SlackApiError):
        return str(error.response.get("error") or "error")
    if isinstance(error, GitOpsGuardError):
        return str(error)
    return type(error).__name__


class Destination:
    def __init__(
        self, name: str, send: Callable[[str], None], pace: Pace, report: Reporter, *, min_interval: float,
        clock: Callable[[], float] = time.monotonic, retire: Callable[[Destination], bool] | None = None,
        idle: float = 300.0,
    ) -> None:  # fmt: skip
        self.name, self._send, self._report, self._min_interval = name, send, report, min_interval
        self._clock, self._retire, self._idle = clock, retire, idle
        self._lanes = Lanes(pace)
        self._cond = threading.Condition()
        self._sending, self.closed, self._last = False, False, float("-inf")
        threading.Thread(target=self._run, name=f"slack {name}", daemon=True).start()

    def put(self, notice: Notice) -> None:
        """Queue a notice; returns at once. A full lane pushes its oldest notice out: counted here (a metric,
        safe from any thread), and a tenant's digest says how many there were in all."""
        with self._cond:
            kept = self._lanes.put(notice, self._clock())
            self._cond.notify()
        if not kept:
            self._report.dropped(self.name, 1)

    def idle(self) -> bool:
        with self._cond:
            return not self._sending and self._lanes.empty()

    def retire_if_idle(self) -> bool:
        """Close this destination when nothing waits (called by its owner, under the owner's lock)."""
        with self._cond:
            self.closed = not self._sending and self._lanes.empty()
            return self.closed

    def _run(self) -> None:
        while (batch := self._next()) is not None:
            text = batch.text()
            self._space()
            try:
                self._send(text)
            except Exception as error:  # one message failed (any way a send can): report it, go on with the next
                self._report.failed(Failure(self.name, batch.describe(), reason(error)))
            finally:
                with self._cond:
                    self._sending = False
                    self._cond.notify_all()

    def _next(self) -> Batch | None:
        """The next message, waiting for it; None when this destination was retired for being idle."""
        idle_since = self._clock()
        while True:
            with self._cond:
                got = self._lanes.take(self._clock())
                if isinstance(got, Batch):
                    self._sending = True
                    return got
                if got is not None:
                    idle_since = self._clock()
                if self._retire is None or self._clock() - idle_since < self._idle:
                    self._cond.wait(got if got is not None else self._idle)
                    continue
            if self._retire(self):
                return None
            idle_since = self._clock()

    def _space(self) -> None:
        """Slack allows about one message per second per channel."""
        wait = self._last + self._min_interval - self._clock()
        if wait > 0:
            time.sleep(wait)
        self._last = self._clock()
