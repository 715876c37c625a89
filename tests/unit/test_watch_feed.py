"""A watch's body pushed from the event loop to the thread reading it (cluster/http.py ``_Feed``): a reader
slower than the server holds at most the bound in memory and still gets every event once, in order; a closed
watch stops being read; a reader whose event loop dies is told."""

from __future__ import annotations

import json
import threading
import time

import pytest
from kubernetes import client

from gitopsguard.cluster import http
from gitopsguard.errors import ClusterError
from tests.httpserver import Server

STREAMING = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
# What the loop may hold past the bound: aiohttp's read-ahead (128 KiB) and one socket read (256 KiB over plain TCP)
READ_AHEAD = 384 * 1024


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def event(n: int, padding: int = 2000) -> bytes:
    return json.dumps({"type": "ADDED", "object": {"metadata": {"name": f"o-{n}"}, "pad": "x" * padding}}).encode()


def flood(events: int) -> bytes:
    return STREAMING + b"".join(chunk(event(n) + b"\n") for n in range(events)) + b"0\r\n\r\n"


def connection(server: Server) -> http.Http:
    configuration = client.Configuration()
    configuration.host = server.url
    return http.Http(configuration, 5)


def test_a_reader_slower_than_the_server_holds_at_most_the_bound_and_misses_nothing() -> None:
    """A tenant creating objects faster than the live cache handles their events: the watch reads ahead up to
    the bound, then leaves the rest in the socket until the reader catches up."""
    events = 8 * http.FEED_BOUND // 2000  # about eight times the bound
    edge = connection(Server(lambda _, __: flood(events)))  # kept: an Http collected closes its connections
    stream = edge.stream("/api/v1/configmaps?watch=true", {}, 5)
    lines = stream.lines()
    seen = [json.loads(next(lines))["object"]["metadata"]["name"]]
    time.sleep(0.5)  # the reader busy: the loop reads what it may meanwhile
    held = stream.buffered
    seen += [json.loads(line)["object"]["metadata"]["name"] for line in lines]
    stream.close()
    assert 0 < held <= http.FEED_BOUND + READ_AHEAD
    assert seen == [f"o-{n}" for n in range(events)]


def test_a_closed_watch_is_no_longer_read() -> None:
    """A watch ended early (a stop, an informer giving up) leaves no task reading behind it."""
    edge = connection(Server(lambda _, __: flood(4 * http.FEED_BOUND // 2000)))
    stream = edge.stream("/api/v1/configmaps?watch=true", {}, 5)
    next(stream.lines())
    stream.close()
    feed = stream._feed
    assert feed is not None
    deadline = time.monotonic() + 5
    while not (feed.task is not None and feed.task.done()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert feed.task is not None and feed.task.cancelled()


def test_a_reader_waiting_on_a_dead_event_loop_gets_a_cluster_error(monkeypatch: pytest.MonkeyPatch) -> None:
    deaths: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", deaths.append)  # the loop's thread dies raising, as it should
    loop = http.EventLoop()
    monkeypatch.setattr(http, "_shared", loop)
    monkeypatch.setattr(http, "LIVENESS", 0.2)
    edge = connection(Server(lambda _, __: STREAMING + chunk(event(0) + b"\n")))
    stream = edge.stream("/w?watch=true", {}, 30)
    lines = stream.lines()
    next(lines)
    loop.loop.call_soon_threadsafe(loop.loop.stop)
    started = time.monotonic()
    with pytest.raises(ClusterError, match="the HTTP event loop stopped while a watch was read"):
        next(lines)
    assert time.monotonic() - started < 3
