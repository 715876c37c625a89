"""Keep-alive HTTP(S) connections to the API server, speaking HTTP/1.1 directly (``http1``).

At thousands of requests per pass the client's own CPU competes with the API server for the same two
cores: per Deployment dry run, the client spent 0.5 ms of CPU through urllib3 and 0.2 ms this way
(single thread, protobuf answer). Batches go through ``multiplex``: one thread, many connections.
The TLS settings are the kubeconfig's (CA, client certificate, verification). Setups this does not
cover (a proxy, a TLS server name override) go through urllib3, batches on threads.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

import urllib3
from kubernetes import client

from gitopsguard.cluster import http1, multiplex
from gitopsguard.cluster.multiplex import Answer, Call


class Transport(Protocol):
    def send(self, method: str, target: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        """One request; raises ``ConnectionError`` when the server cannot be reached."""
        ...

    def send_all(self, calls: Sequence[Call], width: int) -> list[Answer]:
        """Many requests, at most ``width`` at a time, answers in order; ``ConnectionError`` as ``send``."""
        ...


def transport_for(api: client.ApiClient, timeout: float) -> Transport:
    configuration = api.configuration
    if configuration.proxy or getattr(configuration, "tls_server_name", None):
        return _Urllib3(api, timeout)
    return Connections(configuration, timeout)


class Connections:
    """A pool of idle kept-alive connections; each request borrows one (or opens one) and returns it."""

    def __init__(self, configuration: client.Configuration, timeout: float) -> None:
        url = urlsplit(str(configuration.host))
        self._tls = _tls_context(configuration) if url.scheme == "https" else None
        self._host = url.hostname or "localhost"
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._netloc, self._prefix = url.netloc, url.path.rstrip("/")
        self.timeout = timeout
        self._idle: list[socket.socket] = []
        self._lock = threading.Lock()
        self._session: ssl.SSLSession | None = None  # a TLS session new connections resume

    def send_all(self, calls: Sequence[Call], width: int) -> list[Answer]:
        return multiplex.send_all(self, calls, width)

    def encode(self, call: Call) -> bytes:
        method, target, body, headers = call
        return http1.request(method, self._prefix + target, self._netloc, headers, body)

    def send(self, method: str, target: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        return multiplex.send_all(self, [(method, target, body, headers)], 1)[0]

    def borrow(self) -> tuple[socket.socket, bool]:
        """An idle connection (True: the server may have closed it meanwhile), else a new one (False)."""
        while True:
            with self._lock:
                sock = self._idle.pop() if self._idle else None
            if sock is None:
                return self.open(), False
            if not _dropped(sock):
                return sock, True
            sock.close()

    def give_back(self, sock: socket.socket) -> None:
        if isinstance(sock, ssl.SSLSocket) and not sock.session_reused:  # a full handshake: a fresh session
            session = sock.session  # its ticket comes with the first answer read (TLS 1.3 sends it late)
            if session is not None and session.has_ticket:
                self._session = session  # replacing one the server stopped accepting (its keys rotate)
        with self._lock:
            self._idle.append(sock)

    def open(self) -> socket.socket:
        """A new connection; over TLS it resumes the session of an earlier one where the server agrees,
        which spares both sides the certificate signatures and checks (5 ms against 2 ms per connection
        here; a pass opens up to 64)."""
        sock = socket.create_connection((self._host, self._port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tls is None:
            return sock
        try:
            return self._tls.wrap_socket(sock, server_hostname=self._host, session=self._session)
        except BaseException:
            sock.close()
            raise


def _dropped(sock: socket.socket) -> bool:
    """An idle connection with something to read has been closed by the server (or is broken)."""
    try:
        poller = select.poll()  # not select(): a process may hold descriptors above 1024
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


def _tls_context(configuration: client.Configuration) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
    if getattr(configuration, "ca_cert_data", None):
        context.load_verify_locations(cadata=configuration.ca_cert_data)
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif configuration.assert_hostname is False:
        context.check_hostname = False
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file)
    return context


class _Urllib3:
    """Through the ApiClient's own urllib3 pool manager (proxies and every other TLS option)."""

    def __init__(self, api: client.ApiClient, timeout: float) -> None:
        self._pool = api.rest_client.pool_manager
        self._host = str(api.configuration.host)
        self._timeout = timeout

    def send(self, method: str, target: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        try:
            response = self._pool.request(method, self._host + target, body=body, headers=headers,
                                          timeout=self._timeout, retries=False)  # fmt: skip
        except urllib3.exceptions.HTTPError as error:
            raise ConnectionError(str(error)) from error
        got = response.headers
        return Answer(int(response.status), str(got.get("Content-Type") or ""), bytes(response.data),
                      str(got.get("Retry-After") or ""))  # fmt: skip

    def send_all(self, calls: Sequence[Call], width: int) -> list[Answer]:
        return in_threads(calls, lambda call: self.send(*call), width)


T = TypeVar("T")
R = TypeVar("R")


def in_threads(items: Sequence[T], work: Callable[[T], R], width: int) -> list[R]:
    """``work`` on every item, by a few threads each taking the next item; the first exception is raised."""
    if len(items) <= 1:
        return [work(item) for item in items]
    results: list[R | None] = [None] * len(items)
    failure: list[BaseException] = []
    upcoming = iter(range(len(items)))
    lock = threading.Lock()

    def worker() -> None:
        while not failure:
            with lock:
                index = next(upcoming, None)
            if index is None:
                return
            try:
                results[index] = work(items[index])
            except BaseException as error:  # re-raised below, in the caller's thread
                failure.append(error)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(min(width, len(items)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failure:
        raise failure[0]
    return results  # type: ignore[return-value]
