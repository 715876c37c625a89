"""HTTP/1.1 framing on a blocking socket: write one request, read one response.

Just what talking to a Kubernetes API server needs: bodies framed by Content-Length or chunked transfer
coding (or, failing both, by the server closing), interim 1xx answers skipped, and whether the
connection may be used again.
"""

from __future__ import annotations

import socket

MAX_HEAD = 64 * 1024
READ_SIZE = 64 * 1024


class ProtocolError(Exception):
    """The server closed the connection early or answered something that is not HTTP/1.1."""


Headers = dict[str, str]  # lower-case names; repeated fields joined with ", "


def request(method: str, target: str, host: str, headers: Headers, body: bytes | None) -> bytes:
    """The bytes of one request (Content-Length always set when there is a body, or one is expected)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", *(f"{name}: {value}" for name, value in headers.items())]
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body or b'')}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def exchange(sock: socket.socket, raw_request: bytes, *, head: bool = False) -> tuple[int, Headers, bytes, bool]:
    """Send a request and read its response: (status, headers, body, whether the connection is reusable)."""
    sock.sendall(raw_request)
    reader = _Reader(sock)
    status, headers = reader.head()
    while 100 <= status < 200:  # 100 Continue and friends: the real answer follows
        status, headers = reader.head()
    keep = "close" not in headers.get("connection", "").lower()
    if head or status in (204, 304):
        body = b""
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        body = reader.chunked()
    elif "content-length" in headers:
        body = reader.exactly(_length(headers["content-length"]))
    else:
        body, keep = reader.until_closed(), False
    return status, headers, body, keep and not reader.pending


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = b""

    @property
    def pending(self) -> bool:
        """Bytes beyond this response: the connection's framing cannot be trusted any more."""
        return bool(self._buffer)

    def head(self) -> tuple[int, Headers]:
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            if len(self._buffer) > MAX_HEAD:
                raise ProtocolError("response headers larger than 64 KiB")
            self._fill()
        block, self._buffer = self._buffer[:end], self._buffer[end + 4 :]
        status_line, *fields = block.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"not an HTTP/1.1 status line: {status_line[:80]!r}")
        headers: Headers = {}
        for field in fields:
            name, _, value = field.partition(":")
            name, value = name.strip().lower(), value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return int(parts[1]), headers

    def exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill()
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def chunked(self) -> bytes:
        parts = []
        while size := _length(self._line().split(";")[0], base=16):
            parts.append(self.exactly(size))
            if self.exactly(2) != b"\r\n":
                raise ProtocolError("a chunk does not end with CRLF")
        while self._line():  # trailer fields, up to the empty line
            pass
        return b"".join(parts)

    def until_closed(self) -> bytes:
        while chunk := self._sock.recv(READ_SIZE):
            self._buffer += chunk
        data, self._buffer = self._buffer, b""
        return data

    def _line(self) -> str:
        while (end := self._buffer.find(b"\r\n")) < 0:
            self._fill()
        line, self._buffer = self._buffer[:end], self._buffer[end + 2 :]
        return line.decode("latin-1")

    def _fill(self) -> None:
        chunk = self._sock.recv(READ_SIZE)
        if not chunk:
            raise ProtocolError("the server closed the connection before the response ended")
        self._buffer += chunk


def _length(text: str, base: int = 10) -> int:
    try:
        value = int(text.strip(), base)
    except ValueError:
        raise ProtocolError(f"not a length: {text[:40]!r}") from None
    if value < 0:
        raise ProtocolError(f"negative length: {value}")
    return value
