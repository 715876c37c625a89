"""Writes that follow a scan but must never slow it: Events and PolicyReports, sent from a thread of their
own. Events queue up to a bound (as Kyverno's event generator does); past it they are dropped and counted,
since the PolicyReport and the audit log already hold every finding."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

MAX_QUEUED = 1000


class Publisher:
    def __init__(self, report_problem: Callable[[str], None]) -> None:
        self._queue: queue.Queue[Callable[[], str | None]] = queue.Queue(maxsize=MAX_QUEUED)
        self._problem = report_problem
        self.dropped = 0
        self._thread = threading.Thread(target=self._send, name="scan-publisher", daemon=True)
        self._thread.start()

    def submit(self, write: Callable[[], str | None], *, droppable: bool = True) -> None:
        """Queue one write; a droppable one is dropped (and counted) when the queue is full."""
        try:
            self._queue.put(write, block=not droppable)
        except queue.Full:
            self.dropped += 1

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued so far is written; False on timeout."""
        done = threading.Event()

        def mark() -> None:
            done.set()

        self.submit(mark, droppable=False)
        return done.wait(timeout)

    def _send(self) -> None:
        while True:
            write = self._queue.get()
            try:
                problem = write()
            except Exception as error:  # a failed write is reported, never fatal to the scan
                problem = f"writing a scan result failed: {error!r}"
            if problem:
                self._problem(problem)
