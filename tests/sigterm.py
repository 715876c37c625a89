"""SIGTERM (a CI timeout, ``kill``, a closed terminal's supervisor) ends a test session the way Ctrl-C does.

The control planes a session starts run in sessions of their own, so a plain SIGTERM to pytest would leave
etcd, the API server and the controller-manager running with nobody to stop them. Raised as
KeyboardInterrupt instead, it lets pytest tear the session's fixtures down, and those stop what they started.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Terminated(KeyboardInterrupt):
    """The session received SIGTERM."""


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within this block, SIGTERM raises ``Terminated`` in the main thread (elsewhere: nothing changes)."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        raise Terminated(f"terminated by signal {signum}: stopping what the session started")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
