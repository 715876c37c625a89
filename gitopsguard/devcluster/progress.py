"""Staged progress messages with elapsed time, readable both on a terminal and in a CI log."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol, TextIO


class Progress(Protocol):
    def stage(self, message: str) -> None: ...

    def detail(self, message: str) -> None: ...


class StagedProgress:
    """Prints ``[ 2m05s] message`` lines; ``detail`` lines are indented under the current stage."""

    def __init__(self, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._clock = clock
        self._start = clock()
        self._lock = threading.Lock()

    def elapsed(self) -> str:
        seconds = int(self._clock() - self._start)
        return f"{seconds // 60:2d}m{seconds % 60:02d}s"

    def stage(self, message: str) -> None:
        self._write(f"[{self.elapsed()}] {message}")

    def detail(self, message: str) -> None:
        self._write(f"[{self.elapsed()}]     {message}")

    def _write(self, line: str) -> None:
        with self._lock:
            print(line, file=self._stream, flush=True)


class SilentProgress:
    def stage(self, message: str) -> None:
        pass

    def detail(self, message: str) -> None:
        pass


@contextmanager
def heartbeat(progress: Progress, describe: Callable[[], str], every: float = 20.0) -> Iterator[None]:
    """While the block runs, report ``describe()`` every ``every`` seconds so long work never looks hung."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            progress.detail(describe())

    thread = threading.Thread(target=beat, name="progress-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
