"""The one event loop behind every request (cluster/http.py ``EventLoop``): if it stops, the process ends under
the lifeline, and a caller waiting on it is told rather than left hanging."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from gitopsguard import lifeline
from gitopsguard.cluster.http import EventLoop
from gitopsguard.errors import ClusterError

LOOP_STOPS = textwrap.dedent(
    """
    import time
    from kubernetes import client
    from gitopsguard import lifeline
    from gitopsguard.cluster import http
    from gitopsguard.cluster.rest import RawApi
    lifeline.install()
    configuration = client.Configuration()
    configuration.host = "http://127.0.0.1:9"
    RawApi(client.ApiClient(configuration))  # starts the process's event loop
    loop = http.event_loop().loop
    loop.call_soon_threadsafe(loop.stop)
    time.sleep(30)
    print("still alive")
    """
)


def test_an_event_loop_that_stops_ends_the_process_under_the_lifeline() -> None:
    done = subprocess.run([sys.executable, "-c", LOOP_STOPS], capture_output=True, text=True, timeout=60)
    assert done.returncode == lifeline.EXIT_CODE, done.stderr
    assert "still alive" not in done.stdout
    assert "http-loop died (RuntimeError: the HTTP event loop stopped" in done.stderr


def test_a_caller_waiting_when_the_loop_stops_gets_a_cluster_error(monkeypatch: pytest.MonkeyPatch) -> None:
    deaths: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", deaths.append)
    loop = EventLoop()
    failed: list[BaseException] = []

    def wait_long() -> None:
        try:
            loop.run(asyncio.sleep(60))
        except ClusterError as error:
            failed.append(error)

    caller = threading.Thread(target=wait_long)
    caller.start()
    time.sleep(0.2)
    loop.loop.call_soon_threadsafe(loop.loop.stop)
    caller.join(10)
    assert not caller.is_alive(), "the caller hung on a dead loop"
    assert failed and "the HTTP event loop stopped while a request was under way" in str(failed[0])
    assert [d.thread.name for d in deaths if d.thread] == ["http-loop"]
    with pytest.raises(ClusterError, match="the HTTP event loop is not running; restart gitopsguard"):
        loop.run(asyncio.sleep(0))


def test_work_submitted_from_the_loops_own_thread_is_refused_not_deadlocked() -> None:
    loop = EventLoop()

    async def nested() -> None:
        loop.run(asyncio.sleep(0))

    with pytest.raises(RuntimeError, match="on the event loop's own thread"):
        loop.run(nested())
