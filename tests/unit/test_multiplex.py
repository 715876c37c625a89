"""cluster.multiplex: many requests over a few connections from one thread, against a local server."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

import pytest
from kubernetes import client

from gitopsguard.cluster.http1 import ResponseParser
from gitopsguard.cluster.multiplex import Answer
from gitopsguard.cluster.transport import Connections, in_threads

Script = Callable[[int, bytes], bytes | None]  # (request number over all connections, request) -> answer


def echo(_: int, raw: bytes) -> bytes | None:
    target = raw.split(b" ")[1]
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (len(target), target)


class Server:
    """Serves every connection in a thread of its own; an answer of None hangs up without answering,
    an empty answer says nothing and keeps the connection open."""

    def __init__(self, script: Script = echo) -> None:
        self.script, self.count, self.connections, self.requests = script, 0, 0, []
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            conn, _ = self.listener.accept()
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                with self.lock:
                    number, self.count = self.count, self.count + 1
                    self.requests.append(data)
                answer = self.script(number, data)
                if answer is None:
                    return
                conn.sendall(answer)


def pool(server: Server, timeout: float = 5) -> Connections:
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{server.port}"
    return Connections(configuration, timeout=timeout)


def calls(n: int, method: str = "PATCH") -> list[tuple[str, str, bytes | None, dict[str, str]]]:
    return [(method, f"/o/{i}", b"{}", {}) for i in range(n)]


def test_answers_come_back_in_order_over_no_more_connections_than_the_width() -> None:
    server = Server()
    answers = pool(server).send_all(calls(50), width=4)
    assert answers == [Answer(200, "text/plain", f"/o/{i}".encode()) for i in range(50)]
    assert server.connections == 4


def test_connections_are_kept_for_the_next_batch() -> None:
    server, connections = Server(), None
    connections = pool(server)
    connections.send_all(calls(8), width=2)
    connections.send_all(calls(8), width=2)
    assert connections.send("GET", "/single", None, {})[2] == b"/single"
    assert server.connections == 2


def test_a_kept_alive_connection_the_server_dropped_is_replaced_when_repeating_is_safe() -> None:
    server = Server(lambda n, raw: None if n == 1 else echo(n, raw))  # the 2nd request finds it closed
    connections = pool(server)
    connections.send("GET", "/first", None, {})
    assert connections.send_all(calls(1), width=1) == [Answer(200, "text/plain", b"/o/0")]
    assert server.connections == 2 and len(server.requests) == 3


def test_a_post_is_never_sent_twice() -> None:
    server = Server(lambda n, raw: None if n == 1 else echo(n, raw))
    connections = pool(server)
    connections.send("GET", "/first", None, {})
    with pytest.raises(ConnectionError):
        connections.send_all(calls(1, "POST"), width=1)
    assert len(server.requests) == 2


def test_an_answer_closing_the_connection_moves_the_rest_to_a_new_one() -> None:
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nc"
    server = Server(lambda n, raw: closing if n == 0 else echo(n, raw))
    answers = pool(server).send_all(calls(3), width=1)
    assert [a[2] for a in answers] == [b"c", b"/o/1", b"/o/2"]
    assert server.connections == 2


def test_a_server_that_stops_answering_fails_the_batch_after_the_timeout() -> None:
    server = Server(lambda n, raw: b"" if n == 2 else echo(n, raw))
    with pytest.raises(ConnectionError, match="no answer within"):
        pool(server, timeout=0.5).send_all(calls(5), width=2)


def test_a_server_that_is_not_there_fails_the_batch() -> None:
    unused = socket.create_server(("127.0.0.1", 0))
    port = unused.getsockname()[1]
    unused.close()
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{port}"
    with pytest.raises(ConnectionError):
        Connections(configuration, timeout=2).send_all(calls(3), width=2)


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhe\r\n3;x=y\r\nllo\r\n"
        b"0\r\nTrailer: t\r\n\r\n",
    ],
)
def test_an_answer_arriving_a_byte_at_a_time_is_put_together(raw: bytes) -> None:
    parser = ResponseParser()
    pieces = [parser.feed(raw[i : i + 1]) for i in range(len(raw))]
    assert pieces[:-1] == [None] * (len(raw) - 1)
    assert pieces[-1] is not None and (pieces[-1].status, pieces[-1].body, pieces[-1].keep) == (200, b"hello", True)


def test_bytes_beyond_the_answer_make_the_connection_unusable() -> None:
    response = ResponseParser().feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1")
    assert response is not None and response.body == b"ok" and not response.keep


def test_the_threaded_fallback_keeps_the_order_and_raises_the_first_failure() -> None:
    assert in_threads(list(range(40)), lambda i: i * i, width=8) == [i * i for i in range(40)]

    def fails_at_seven(i: int) -> int:
        if i == 7:
            raise ConnectionError("seven")
        return i

    with pytest.raises(ConnectionError, match="seven"):
        in_threads(list(range(40)), fails_at_seven, width=8)
