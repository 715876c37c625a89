"""cluster.http1 and the kept-alive connections of cluster.transport, against a scripted local server."""

from __future__ import annotations

import socket
import threading

import pytest
from kubernetes import client

from gitopsguard.cluster.http1 import ProtocolError, Response, ResponseParser, request
from gitopsguard.cluster.multiplex import Answer
from gitopsguard.cluster.transport import Connections


class Scripted:
    """A loopback server that answers each request with the next scripted bytes; None closes the connection."""

    def __init__(self, answers: list[bytes | None]) -> None:
        self.answers, self.requests, self.connections = list(answers), [], 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while self.answers:
            conn, _ = self.listener.accept()
            self.connections += 1
            with conn:
                while self.answers:
                    data = conn.recv(65536)
                    if not data:
                        break
                    self.requests.append(data)
                    answer = self.answers.pop(0)
                    if answer is None:
                        break
                    conn.sendall(answer)


def parse(raw: bytes, *, then_closed: bool = False) -> Response | None:
    parser = ResponseParser()
    response = parser.feed(raw)
    return parser.closed() if response is None and then_closed else response


def test_a_request_carries_host_headers_and_a_length() -> None:
    raw = request("PATCH", "/api/v1/x?dryRun=All", "h:6443", {"Accept": "application/json"}, b"{}")
    assert raw == (b"PATCH /api/v1/x?dryRun=All HTTP/1.1\r\nHost: h:6443\r\nAccept: application/json\r\n"
                   b"Content-Length: 2\r\n\r\n{}")  # fmt: skip


def test_content_length_chunked_and_interim_answers_are_framed() -> None:
    answer = parse(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\nhello")
    assert answer == Response(200, {"content-type": "application/json", "content-length": "5"}, b"hello", True)
    answer = parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"3;x=y\r\nabc\r\n10\r\n" + b"d" * 16 + b"\r\n0\r\nTrailer: t\r\n\r\n")  # fmt: skip
    assert answer is not None and (answer.status, answer.body, answer.keep) == (200, b"abc" + b"d" * 16, True)


def test_a_body_without_length_ends_with_the_connection() -> None:
    answer = parse(b"HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n\r\nboom", then_closed=True)
    assert answer is not None and (answer.status, answer.body, answer.keep) == (500, b"boom", False)


@pytest.mark.parametrize(
    "answer", [b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", b"SSH-2.0-OpenSSH\r\n\r\n", b""]
)
def test_a_cut_or_foreign_answer_is_a_protocol_error(answer: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse(answer, then_closed=True)


def connections(port: int) -> Connections:
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{port}"
    return Connections(configuration, timeout=5)


def test_a_connection_is_kept_alive_and_replaced_when_the_server_closed_it() -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    server = Scripted([ok, ok, None, ok])
    pool = connections(server.port)
    assert pool.send("GET", "/a", None, {}) == Answer(200, "", b"ok")
    assert pool.send("GET", "/b", None, {}) == Answer(200, "", b"ok")
    assert server.connections == 1
    assert pool.send("GET", "/c", None, {}) == Answer(200, "", b"ok"), "sent again on a new connection"
    assert server.connections == 2 and server.requests[-1].startswith(b"GET /c ")


def test_a_post_is_not_sent_twice_when_the_connection_breaks_under_it() -> None:
    server = Scripted([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", None])
    pool = connections(server.port)
    pool.send("GET", "/a", None, {})
    with pytest.raises(ConnectionError):
        pool.send("POST", "/events", b"{}", {})
    assert [r.split(b" ")[0] for r in server.requests] == [b"GET", b"POST"]


def test_a_server_that_will_not_speak_tls_is_a_connection_error() -> None:
    server = Scripted([None])  # accepts, reads the TLS hello, hangs up
    configuration = client.Configuration()
    configuration.host = f"https://127.0.0.1:{server.port}"
    with pytest.raises(ConnectionError):
        Connections(configuration, timeout=5).send("GET", "/", None, {})
