"""What RawApi puts on the wire through aiohttp (cluster/http.py), against a scripted loopback server: a
hostile name cannot forge a request, a redirect never carries our token elsewhere, a failed batch sends
nothing more, connections stay bounded, and a silent server is given up on."""

from __future__ import annotations

import signal
import threading
import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from kubernetes import client

from gitopsguard.cluster.rest import RawApi, Request
from gitopsguard.cluster.retries import APPLY_PATCH, POLICY
from gitopsguard.errors import ClusterError, UnreachableError
from tests.httpserver import Server, echo

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
FAST = POLICY.new(backoff_factor=0.001, backoff_jitter=0.0)
TOKEN = "s3cr3t-token"
SERVER = Server(lambda _, __: OK)  # one for the property test's many examples


def raw_api(server: Server, timeout: float = 5) -> RawApi:
    configuration = client.Configuration()
    configuration.host = server.url
    configuration.api_key = {"authorization": TOKEN}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    return RawApi(client.ApiClient(configuration), timeout=timeout, retry=FAST)


@settings(max_examples=60)
@given(st.text(max_size=30))
@example("a\r\nX-Injected: 1")
@example("a b")
@example("a\nb")
@example("é")
@example("a\x00b")
@example("#")
@example("?")  # yarl dropped the empty query: a GET of the collection went out
@example("..")
@example("../secrets/x")
def test_a_hostile_object_name_never_forges_a_request_line_or_header(name: str) -> None:
    """A contributor names an object in Git; whatever the name, the server sees exactly the one request
    asked for, with the name in its target as written, or nothing at all."""
    api, before = raw_api(SERVER), SERVER.count
    path = f"/api/v1/namespaces/ns/configmaps/{name}"
    try:
        api.get(path, f"ConfigMap/ns/{name}")
    except ClusterError as refused:
        assert "not sent" in str(refused)
        assert SERVER.count == before
        return
    assert SERVER.count == before + 1
    head = SERVER.requests[-1].split(b"\r\n\r\n")[0].split(b"\r\n")
    assert head[0] == f"GET {path} HTTP/1.1".encode()
    assert not any(line.lower().startswith(b"x-injected") for line in head)


@pytest.mark.parametrize("name", ["#", "..", "../secrets/x", ".", "a b", "a\r\nX-Injected: 1", "é", "?"])
def test_a_name_that_would_change_the_request_is_refused_before_anything_is_sent(name: str) -> None:
    """``DELETE .../configmaps/#`` would go out as a DELETE of the whole collection, ``..`` would name another
    resource, a space or a line break would end the request line: none of them is sent."""
    server = Server(lambda _, __: OK)
    with pytest.raises(ClusterError, match=r"not sent: a request target is encoded ASCII"):
        raw_api(server).delete(f"/api/v1/namespaces/ns/configmaps/{name}", f"ConfigMap/ns/{name}")
    assert server.count == 0


def test_a_batch_with_one_hostile_name_sends_none_of_its_requests() -> None:
    """Every target of a batch is checked before the first request goes out (each URL is made only as it is
    sent): a revision with one such name writes nothing at all."""
    server = Server(lambda _, __: OK)
    batch = [Request("DELETE", f"/api/v1/namespaces/ns/configmaps/{name}", {}, None) for name in ("a", "b", "#")]
    with pytest.raises(ClusterError, match=r"not sent: a request target is encoded ASCII"):
        raw_api(server).send_all(batch, 1)
    assert server.count == 0


def test_a_redirect_is_not_followed_and_the_token_never_leaves_for_another_host() -> None:
    """Something in front of the API server (a compromised proxy or aggregated API) answers 307 to a host
    it controls: we do not go there, so our bearer token is never sent to it."""
    elsewhere = Server(lambda _, __: OK)
    location = f"{elsewhere.url}/steal".encode()
    redirecting = Server(lambda _, __: b"HTTP/1.1 307 X\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n" % location)
    with pytest.raises(ClusterError, match=r"^Namespace/a: HTTP 307"):
        raw_api(redirecting).get("/api/v1/namespaces/a", "Namespace/a")
    assert redirecting.count == 1 and TOKEN.encode() in redirecting.requests[0]
    assert elsewhere.count == 0


def test_a_batch_that_fails_sends_nothing_more_after_the_failure() -> None:
    """A create fails mid-batch (the connection is cut): the caller is told the batch failed, so nothing of
    it may still go out behind its back (it would create objects nobody knows were sent)."""
    server = Server(lambda number, raw: None if number == 4 else echo(number, raw))
    creates = [Request("POST", f"/api/v1/namespaces/ns/configmaps/c{i}", {}, b"{}") for i in range(40)]
    with pytest.raises(UnreachableError):
        raw_api(server).send_all(creates, 4)
    time.sleep(0.5)  # requests already on the wire when the batch failed may still arrive; none may start
    seen = server.count
    time.sleep(0.5)
    assert server.count == seen, "requests of a failed batch went out after it failed"
    assert seen < len(creates), "every request of the batch went out: it went on past its failure"
    assert seen < 12


def test_a_caller_interrupted_mid_batch_stops_the_batch() -> None:
    """SIGTERM reaches the controller while it waits on a batch of applies: once the caller is gone, the
    event loop sends nothing more of that batch on its own."""

    def slowly(number: int, raw: bytes) -> bytes | None:
        time.sleep(0.1)
        return echo(number, raw)

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    server = Server(slowly)
    applies = [Request("PATCH", f"/o/{i}", {}, b"{}", APPLY_PATCH) for i in range(100)]
    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(KeyboardInterrupt):
            raw_api(server).send_all(applies, 1)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    time.sleep(0.3)  # an answer under way may still land
    seen = server.count
    time.sleep(0.5)
    assert server.count == seen < 20, "the batch went on after its caller was interrupted"


def test_a_batch_is_answered_in_order_over_no_more_connections_than_the_pool_holds() -> None:
    server = Server()
    reads = [Request("GET", f"/o/{i}", {}, None) for i in range(300)]
    answers = raw_api(server).send_all(reads, 128)
    assert [a.body for a in answers] == [f"/o/{i}".encode() for i in range(300)]
    assert server.connections <= 64


def test_connections_are_kept_alive_between_calls() -> None:
    server = Server()
    api = raw_api(server)
    for i in range(5):
        api.send_all([Request("GET", f"/o/{i}", {}, None)], 1)
    assert server.connections == 1


def test_a_server_gone_silent_is_given_up_on_after_the_timeout() -> None:
    server = Server(lambda _, __: b"")
    started = time.monotonic()
    with pytest.raises(UnreachableError, match=r"^http://127\.0\.0\.1:\d+: POST /api/v1/namespaces: the API server"):
        raw_api(server, timeout=0.5).call("POST", "/api/v1/namespaces", body={})
    assert time.monotonic() - started < 3


def test_many_threads_share_one_api_without_mixing_answers() -> None:
    server = Server()
    api, failures = raw_api(server), []

    def work(n: int) -> None:
        for i in range(20):
            body = api.send_all([Request("GET", f"/t{n}/{i}", {}, None)], 1)[0].body
            if body != f"/t{n}/{i}".encode():
                failures.append(body)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
