"""HTTP/1.1 framing: the bytes of one request, and a response parser fed as bytes arrive.

Just what talking to a Kubernetes API server needs: bodies framed by Content-Length or chunked transfer
coding (or, failing both, by the server closing), interim 1xx answers skipped, and whether the
connection may be used again. The one-thread loop in ``multiplex`` feeds the parser from its sockets.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_HEAD = 64 * 1024
READ_SIZE = 64 * 1024


class ProtocolError(Exception):
    """The server closed the connection early or answered something that is not HTTP/1.1."""


Headers = dict[str, str]  # lower-case names; repeated fields joined with ", "


@dataclass(frozen=True)
class Response:
    status: int
    headers: Headers
    body: bytes
    keep: bool  # whether the connection may carry another request


def request(method: str, target: str, host: str, headers: Headers, body: bytes | None) -> bytes:
    """The bytes of one request (Content-Length always set when there is a body, or one is expected)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", *(f"{name}: {value}" for name, value in headers.items())]
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body or b'')}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


class ResponseParser:
    """One response, fed in pieces: ``feed`` returns it once whole, ``closed`` when the server hung up."""

    def __init__(self, *, head: bool = False) -> None:
        self._head_only = head
        self._buffer = b""
        self._status = 0
        self._headers: Headers = {}
        self._parts: list[bytes] = []  # chunks of a chunked body read so far

    @property
    def started(self) -> bool:
        """Whether any byte of the answer has arrived."""
        return bool(self._buffer or self._status)

    def feed(self, data: bytes) -> Response | None:
        self._buffer += data
        if not self._status and not self._read_head():
            return None
        keep = "close" not in self._headers.get("connection", "").lower()
        if self._head_only or self._status in (204, 304):
            return self._done(b"", keep)
        if "chunked" in self._headers.get("transfer-encoding", "").lower():
            return self._done(b"".join(self._parts), keep) if self._read_chunks() else None
        if "content-length" in self._headers:
            size = _length(self._headers["content-length"])
            if len(self._buffer) < size:
                return None
            body, self._buffer = self._buffer[:size], self._buffer[size:]
            return self._done(body, keep)
        return None  # the body ends when the connection does

    def closed(self) -> Response:
        """The server closed the connection: that ends a body without framing, and cuts any other."""
        framed = "chunked" in self._headers.get("transfer-encoding", "").lower() or "content-length" in self._headers
        if not self._status or framed:
            raise ProtocolError("the server closed the connection before the response ended")
        body, self._buffer = self._buffer, b""
        return self._done(body, False)

    def _done(self, body: bytes, keep: bool) -> Response:
        # Bytes beyond this response: the connection's framing cannot be trusted any more.
        return Response(self._status, self._headers, body, keep and not self._buffer)

    def _read_head(self) -> bool:
        while not self._status:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD:
                    raise ProtocolError("response headers larger than 64 KiB")
                return False
            block, self._buffer = self._buffer[:end], self._buffer[end + 4 :]
            status, headers = _head(block)
            if not 100 <= status < 200:  # 100 Continue and friends: the real answer follows
                self._status, self._headers = status, headers
        return True

    def _read_chunks(self) -> bool:
        """Consume whole chunks from the buffer; True once the last chunk and the trailer are in."""
        while (end := self._buffer.find(b"\r\n")) >= 0:
            size = _length(self._buffer[:end].decode("latin-1").split(";")[0], base=16)
            if size == 0:  # the last chunk; then trailer fields, up to an empty line
                if (stop := self._buffer.find(b"\r\n\r\n", end)) < 0:
                    return False
                self._buffer = self._buffer[stop + 4 :]
                return True
            start, stop = end + 2, end + 2 + size
            if len(self._buffer) < stop + 2:
                return False
            if self._buffer[stop : stop + 2] != b"\r\n":
                raise ProtocolError("a chunk does not end with CRLF")
            self._parts.append(self._buffer[start:stop])
            self._buffer = self._buffer[stop + 2 :]
        return False


def _head(block: bytes) -> tuple[int, Headers]:
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


def _length(text: str, base: int = 10) -> int:
    try:
        value = int(text.strip(), base)
    except ValueError:
        raise ProtocolError(f"not a length: {text[:40]!r}") from None
    if value < 0:
        raise ProtocolError(f"negative length: {value}")
    return value
