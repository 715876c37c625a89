"""A gitopsguard process keeps at most two malloc arenas, however many threads it runs (``gitopsguard/malloc.py``).

Each thread of a process that allocates gets a glibc arena of its own, up to 8 per core, and an arena keeps
what it once held. The arenas are counted the way glibc reports them (``malloc_stats``, one "Arena N:" block
each), in a fresh interpreter: the setting is process-wide, and must come before the threads start."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc arenas")

THREADS = 8  # each allocates while the others wait: without a bound, each gets an arena

SCRIPT = """
import ctypes, threading
{start}
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
ready, go = threading.Barrier({threads}), threading.Event()
def allocate():
    ready.wait()  # every thread alive at once, so none inherits a finished one's arena
    libc.malloc(1000)
    go.wait()
threads = [threading.Thread(target=allocate) for _ in range({threads})]
for t in threads: t.start()
import time; time.sleep(0.5)
libc.malloc_stats()
go.set()
for t in threads: t.join()
"""


def arenas_after_threads(start: str) -> int:
    """How many arenas glibc reports after ``THREADS`` threads each allocated, ``start`` run first."""
    script = textwrap.dedent(SCRIPT.format(start=start, threads=THREADS))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    return sum(line.startswith("Arena ") for line in done.stderr.splitlines())


def test_threads_of_a_started_gitopsguard_command_share_at_most_two_arenas() -> None:
    start = """
from gitopsguard.cli import main
try:
    main(["check", "--help"])  # the command group's start, as every command runs it
except SystemExit:
    pass
"""
    assert 1 <= arenas_after_threads(start) <= 2


def test_without_the_bound_each_thread_gets_an_arena_of_its_own() -> None:
    """The count above can tell: the same threads without gitopsguard's start."""
    assert arenas_after_threads("") > 2
