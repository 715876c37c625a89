"""cluster.retries through RawApi: what is asked again, after how long, and how often (a local server)."""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from gitopsguard.cluster import retries
from gitopsguard.cluster.rest import RawApi, Request
from gitopsguard.cluster.retries import APPLY_PATCH, POLICY, TRIES
from gitopsguard.errors import ClusterError, TooManyRequestsError, UnavailableError, UnreachableError
from tests.httpserver import Server

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
FAST = POLICY.new(backoff_factor=0.001, backoff_jitter=0.0)


def status(code: int, retry_after: str = "") -> bytes:
    extra = f"Retry-After: {retry_after}\r\n".encode() if retry_after else b""
    body = b'{"kind":"Status","message":"please wait"}'
    return b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s" % (
        code, extra, len(body), body)  # fmt: skip


def failing_first(n: int, answer: bytes | None) -> Server:
    """Answers ``answer`` (None: hangs up) to the first ``n`` requests, then 200."""
    return Server(lambda number, _: answer if number < n else OK)


def api(server: Server) -> RawApi:
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{server.port}"
    return RawApi(client.ApiClient(configuration), timeout=5, retry=FAST)


def test_a_throttled_get_waits_the_retry_after_then_succeeds() -> None:
    server = failing_first(1, status(429, "1"))
    started = time.monotonic()
    assert api(server).get("/api/v1/namespaces/a") == {}
    assert time.monotonic() - started >= 0.9, "Retry-After: 1 was honoured"
    assert server.count == 2


def test_an_apply_answered_503_is_sent_again() -> None:
    server = failing_first(2, status(503))
    answer = api(server).call("PATCH", "/api/v1/namespaces/a", content_type=APPLY_PATCH, body=b"{}")
    assert answer == {} and server.count == 3


def test_a_create_answered_503_is_not_sent_twice() -> None:
    server = failing_first(1, status(503))
    with pytest.raises(UnavailableError):
        api(server).call("POST", "/api/v1/namespaces", body={})
    assert server.count == 1


def test_a_throttled_create_is_sent_again_since_the_server_never_ran_it() -> None:
    server = failing_first(1, status(429, "0"))
    assert api(server).call("POST", "/api/v1/namespaces", body={}) == {}
    assert server.count == 2


def test_a_dry_run_create_answered_503_is_sent_again() -> None:
    server = failing_first(1, status(503))
    assert api(server).call("POST", "/api/v1/namespaces", query={"dryRun": "All"}, body={}) == {}


def test_a_get_on_a_reset_connection_is_sent_again() -> None:
    server = failing_first(1, None)
    assert api(server).get("/api/v1/namespaces/a") == {}
    assert server.count == 2


def test_a_create_on_a_reset_connection_is_not_sent_again() -> None:
    server = failing_first(1, None)
    with pytest.raises(UnreachableError):
        api(server).call("POST", "/api/v1/namespaces", body={})
    assert server.count == 1


def test_retries_are_bounded_and_the_last_answer_stands() -> None:
    server = failing_first(10**6, status(429, "0"))
    with pytest.raises(TooManyRequestsError):
        api(server).get("/api/v1/namespaces/a")
    assert server.count == TRIES + 1


def test_a_batch_asks_again_only_for_its_throttled_answers() -> None:
    server = Server(lambda number, raw: status(429, "0") if b"/b " in raw and number < 3 else OK)
    requests = [Request("PATCH", f"/{name}", {}, b"{}", APPLY_PATCH) for name in "abc"]
    answers = api(server).send_all(requests, 3)
    assert [a.status for a in answers] == [200, 200, 200]
    assert sum(b"/b " in r for r in server.requests) == 2
    assert sum(b"/a " in r for r in server.requests) == 1


def test_a_batch_of_creates_is_not_resent_after_a_503() -> None:
    server = failing_first(1, status(503))
    answers = api(server).send_all([Request("POST", "/a", {}, b"{}")], 1)
    assert answers[0].status == 503 and server.count == 1


def test_a_batch_of_applies_is_resent_after_a_dropped_connection() -> None:
    server = failing_first(1, None)
    answers = api(server).send_all([Request("PATCH", f"/{n}", {}, b"{}", APPLY_PATCH) for n in "ab"], 1)
    assert [a.status for a in answers] == [200, 200]


def test_a_dry_run_that_a_webhook_failed_with_500_is_not_asked_again() -> None:
    server = failing_first(1, status(500))
    with pytest.raises(ClusterError, match="please wait"):
        api(server).call("POST", "/api/v1/namespaces", query={"dryRun": "All"}, body={})
    assert server.count == 1


def test_a_server_asking_for_an_hour_is_waited_on_for_a_few_seconds_only() -> None:
    server = failing_first(1, status(429, "3600"))
    started = time.monotonic()
    assert api(server).get("/api/v1/namespaces/a") == {}
    assert time.monotonic() - started < 6, "Retry-After is capped"


def test_the_leader_lease_is_never_held_by_retries_past_its_expiry() -> None:
    """A renewal retried for seconds past the lease's expiry would let two replicas act at once."""
    server = failing_first(3, status(429, "5"))
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{server.port}"
    lease_api = RawApi(client.ApiClient(configuration), timeout=5, retry=retries.ONCE)
    started = time.monotonic()
    code, _ = lease_api.request("GET", "/apis/coordination.k8s.io/v1/namespaces/x/leases/y")
    assert code == 429 and server.count == 1
    assert time.monotonic() - started < 1
