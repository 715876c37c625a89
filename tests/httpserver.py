"""A scripted HTTP/1.1 server on loopback, for tests of the client's behaviour on answers a real API server
gives rarely (throttling, 503s, hang-ups, silence). It reads whole requests (head, then a body of its
Content-Length) from kept-alive connections, each served in a thread of its own; over TLS when given a
server context (``tests/tlspki.py`` makes certificates)."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable

Script = Callable[[int, bytes], bytes | None]  # (request number over all connections, raw request) -> answer


def echo(_: int, raw: bytes) -> bytes | None:
    """200 with the request's target as the body."""
    target = raw.split(b" ")[1]
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (len(target), target)


def json_echo(_: int, raw: bytes) -> bytes | None:
    """200 with a JSON object naming the request's target, as a Kubernetes API server answers a read."""
    body = b'{"target": "%s"}' % raw.split(b" ")[1].replace(b"\\", b"").replace(b'"', b"")
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


class Server:
    """Answers each request with ``script``'s bytes; None hangs up without answering, b"" says nothing and
    keeps the connection open (a server gone silent)."""

    def __init__(self, script: Script = echo, *, tls: ssl.SSLContext | None = None) -> None:
        self.script, self.count, self.connections, self.tls = script, 0, 0, tls
        self.requests: list[bytes] = []
        self.handshake_failures: list[str] = []
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            conn, _ = self.listener.accept()
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        if self.tls is not None:
            try:
                conn = self.tls.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError) as error:
                self.handshake_failures.append(str(error))
                conn.close()
                return
        with conn:
            buffer = b""
            while True:
                try:
                    request, buffer = _read_request(conn, buffer)
                except OSError:  # the client reset the connection
                    return
                if request is None:
                    return
                with self.lock:
                    number, self.count = self.count, self.count + 1
                    self.requests.append(request)
                answer = self.script(number, request)
                if answer is None:
                    return
                try:
                    conn.sendall(answer)
                except OSError:
                    return


def _read_request(conn: socket.socket, buffer: bytes) -> tuple[bytes | None, bytes]:
    """One whole request from ``conn`` (None once the client hung up) and what followed it."""
    while b"\r\n\r\n" not in buffer:
        data = conn.recv(65536)
        if not data:
            return None, b""
        buffer += data
    head, _, rest = buffer.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        data = conn.recv(65536)
        if not data:
            return None, b""
        rest += data
    return head + b"\r\n\r\n" + rest[:length], rest[length:]
