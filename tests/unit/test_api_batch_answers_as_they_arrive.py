"""A batch's answers handed on as each arrives (``RawApi.send_each``, what ``Applier``'s dry runs and applies
use), so that a batch of thousands never holds all its answers: each is taken before the batch ends, a
throttled one only once it is final, and a batch sent again after a dropped connection ends with the later
answers (a local server)."""

from __future__ import annotations

import threading

from kubernetes import client

from gitopsguard.cluster.http import Answer
from gitopsguard.cluster.rest import RawApi, Request
from gitopsguard.cluster.retries import APPLY_PATCH, POLICY
from tests.httpserver import Server

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
THROTTLED = b"HTTP/1.1 429 X\r\nRetry-After: 0\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
FAST = POLICY.new(backoff_factor=0.001, backoff_jitter=0.0)


def api(server: Server) -> RawApi:
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{server.port}"
    return RawApi(client.ApiClient(configuration), timeout=10, retry=FAST)


def applies(*names: str) -> list[Request]:
    return [Request("PATCH", f"/{name}", {}, b"{}", APPLY_PATCH) for name in names]


class Taken:
    def __init__(self) -> None:
        self.answers: list[tuple[int, int]] = []  # (index, status), in the order taken
        self.lock = threading.Lock()

    def __call__(self, index: int, answer: Answer) -> None:
        with self.lock:
            self.answers.append((index, answer.status))


def test_each_answer_is_taken_as_it_arrives_not_when_the_batch_ends() -> None:
    """The last request's answer is held back by the server: the others' must already have been taken."""
    release, taken = threading.Event(), Taken()

    def script(_: int, raw: bytes) -> bytes:
        if b"/last " in raw:
            release.wait(20)
        return OK

    server = Server(script)
    batch = threading.Thread(target=api(server).send_each, args=(applies("a", "b", "c", "last"), 4, taken))
    batch.start()
    try:
        for _ in range(200):
            if len(taken.answers) == 3:
                break
            release.wait(0.05)
        assert sorted(taken.answers) == [(0, 200), (1, 200), (2, 200)], "taken while the batch still waits"
    finally:
        release.set()
        batch.join(20)
    assert sorted(taken.answers) == [(0, 200), (1, 200), (2, 200), (3, 200)]


def test_a_throttled_answer_is_taken_only_once_it_is_final() -> None:
    server = Server(lambda number, raw: THROTTLED if b"/b " in raw and number < 3 else OK)
    taken = Taken()
    api(server).send_each(applies("a", "b", "c"), 3, taken)
    assert sorted(taken.answers) == [(0, 200), (1, 200), (2, 200)], "the 429 was never handed on"


def test_a_batch_sent_again_after_a_dropped_connection_ends_with_every_later_answer() -> None:
    server = Server(lambda number, _: None if number == 0 else OK)  # the first request: hung up on
    taken = Taken()
    api(server).send_each(applies("a", "b"), 1, taken)
    assert {index for index, _ in taken.answers} == {0, 1} and taken.answers[-2:] == [(0, 200), (1, 200)]
