"""RawApi.watch over aiohttp (cluster/http.py ``Stream``), against a scripted loopback server: events come as
they arrive, a refusal is one ERROR event, an event too big or a silent stream ends the watch with a
ClusterError, and watches never take the connections requests need."""

from __future__ import annotations

import itertools
import json
import threading
import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from kubernetes import client

from gitopsguard.cluster import http
from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import ClusterError
from tests.httpserver import Server

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
STREAMING = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def event(name: str, padding: int = 0) -> bytes:
    body = {"metadata": {"name": name, "resourceVersion": "1"}, "data": {"v": "x" * padding}}
    return json.dumps({"type": "ADDED", "object": body}).encode() + b"\n"


def raw_api(server: Server) -> RawApi:
    configuration = client.Configuration()
    configuration.host = server.url
    return RawApi(client.ApiClient(configuration), timeout=5)


def watching(server: Server, read_timeout: float = 5) -> list[str]:
    events = raw_api(server).watch("/api/v1/configmaps", {}, read_timeout=read_timeout)
    return [e["object"]["metadata"]["name"] for e in events]


def test_events_split_across_chunks_arrive_whole_and_in_order() -> None:
    lines = event("a") + event("b") + b"\n" + event("c")
    pieces = [lines[i : i + 7] for i in range(0, len(lines), 7)]
    server = Server(lambda _, __: STREAMING + b"".join(chunk(p) for p in pieces) + b"0\r\n\r\n")
    assert watching(server) == ["a", "b", "c"]
    assert b"watch=true" in server.requests[0].split(b"\r\n")[0]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.text("abc", min_size=1, max_size=5), st.integers(0, 70_000)), min_size=1, max_size=6),
    st.lists(st.integers(1, 200_000), max_size=8),
)
@example([("a", 0), ("b", 0)], [1])  # a chunk of one byte, then the rest
@example([("a", 65_536), ("b", 0)], [65_600])  # a chunk ending just past an event's line break
def test_events_arrive_whole_and_in_order_however_the_stream_is_cut(
    events: list[tuple[str, int]], cuts: list[int]
) -> None:
    """The stream is read in pieces as the network delivers them (many events a read, or an event over many
    reads); every event comes out whole, once, in order, wherever the pieces end."""
    lines = b"".join(event(name, padding) for name, padding in events)
    edges = sorted({0, len(lines), *(c % len(lines) for c in cuts)})
    pieces = b"".join(chunk(lines[a:b]) for a, b in itertools.pairwise(edges))
    server = Server(lambda _, __: STREAMING + pieces + b"0\r\n\r\n")
    assert watching(server) == [name for name, _ in events]


def test_a_refused_watch_is_one_error_event_carrying_the_servers_status() -> None:
    status = b'{"kind":"Status","code":410,"reason":"Expired","message":"too old resource version: 1 (5)"}'
    gone = b"HTTP/1.1 410 Gone\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(status), status)  # fmt: skip
    events = list(raw_api(Server(lambda _, __: gone)).watch("/api/v1/configmaps", {}, read_timeout=5))
    assert events == [{"type": "ERROR", "object": {**json.loads(status), "code": 410}}]


def test_an_event_of_a_megabyte_and_more_arrives_whole() -> None:
    big = event("big", padding=2 * 1024 * 1024)
    server = Server(lambda _, __: STREAMING + chunk(big) + chunk(event("after")) + b"0\r\n\r\n")
    assert watching(server) == ["big", "after"]


def test_an_event_larger_than_the_bound_ends_the_watch_instead_of_filling_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A hostile or broken peer sending one endless line: the watch ends at the bound, and the informer
    lists again and resumes."""
    monkeypatch.setattr(http, "MAX_EVENT", 1024 * 1024)
    endless = STREAMING + chunk(b"x" * (2 * 1024 * 1024))
    with pytest.raises(ClusterError, match=r"^http://127\.0\.0\.1:\d+: watch /api/v1/configmaps ended: "):
        watching(Server(lambda _, __: endless))


def test_a_watch_gone_silent_ends_after_its_read_timeout() -> None:
    server = Server(lambda _, __: STREAMING + chunk(event("a")))  # then nothing, the connection open
    started, seen = time.monotonic(), []
    with pytest.raises(ClusterError, match="watch /api/v1/configmaps ended"):
        for e in raw_api(server).watch("/api/v1/configmaps", {}, read_timeout=0.5):
            seen.append(e["object"]["metadata"]["name"])
    assert seen == ["a"]
    assert time.monotonic() - started < 3


def test_open_watches_beyond_the_request_pool_never_starve_requests() -> None:
    """The live cache and the live scan hold a watch per kind for minutes; requests still get connections."""
    server = Server(lambda _, raw: STREAMING + chunk(event("a")) if b"watch=true" in raw else OK)
    raw = raw_api(server)
    watches = [raw.watch("/api/v1/configmaps", {}, read_timeout=30) for _ in range(http.CONNECTIONS + 6)]
    for watch in watches:
        assert next(watch)["type"] == "ADDED"
    answered = threading.Event()

    def request() -> None:
        raw.get("/version")
        answered.set()

    threading.Thread(target=request, daemon=True).start()
    assert answered.wait(5), "a request waited behind the watches"
    for watch in watches:
        watch.close()
