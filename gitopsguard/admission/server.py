"""The webhook server: HTTPS on ``/validate`` and ``/mutate`` (``/healthz`` for probes), one thread per
connection, each request bounded in size and time, and never ended by what a request holds.

- TLS is set up in the connection's own thread, so a client that never finishes its handshake holds only
  its own thread, never the accept loop; the certificate can be swapped (``set_tls``) without a restart.
- Only a peer that finished its handshake holds a slot, and with a client CA (``Settings.client_ca``) only
  one that showed a certificate it signed (the API server): handshakes are deadlined and counted apart
  (peers.py), so strangers can neither hold slots nor leave records.
- Slots are capped (``max_connections``); a connection over the cap is closed at once. Each has one request
  in flight at most, so that also bounds the judgements waiting for the pool. An idle one is kept longer than
  the API server's client keeps it (``Settings.idle``), so that the API server is the one to close it.
- A request (its line, headers and body) is read within ``timeout`` seconds of its first byte in all (not
  per read: a client trickling a byte at a time is cut off), and a body at most ``MAX_REVIEW_BYTES``.
- Judging runs in a pool and is awaited until the request's deadline; a slow evaluation is answered with a
  denial (fail closed) before the API server's own ``timeoutSeconds``, and a full pool is too.
- What it judges with (``judgement``) is read once per request: the controller swaps it whole.
"""

from __future__ import annotations

import io
import json
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as PoolTimeout
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gitopsguard.admission.peers import Handshakes, peer_allowed, require_client_certificates
from gitopsguard.admission.request import MAX_REVIEW_BYTES, AdmissionRequest, BadReviewError, parse_review
from gitopsguard.admission.review import (
    Judgement,
    PodSecurity,
    Verdict,
    control_plane,
    mutate_request,
    refusal,
    response,
    validate,
)
from gitopsguard.model import KubeObject

WEBHOOKS = ("validate", "mutate")
SUPERUSERS = "system:masters"
WHOAMI = "gitopsguard-whoami-"  # the name of the dry-run Namespace by which the server learns who we are
# Go's http.Transport closes a connection idle this long (client-go keeps its IdleConnTimeout); the API
# server's webhook client is one (k8s.io/apiserver/pkg/util/webhook/client.go, over client-go's transport).
GO_IDLE_CONNECTION_TIMEOUT = 90.0


@dataclass(frozen=True)
class Settings:
    timeout: float = 4.0  # seconds for a whole request; below the configurations' timeoutSeconds (5)
    # seconds a kept-alive connection may wait for its next request: longer than the API server keeps one, so
    # that it always closes first. Closing first races its reuse (a request written as we close fails, and
    # failurePolicy Fail denies the user's write), and cost a quiet cluster a TLS handshake per call.
    idle: float = GO_IDLE_CONNECTION_TIMEOUT + 5.0
    max_connections: int = 256
    workers: int = 8
    handshake: float = 2.0  # seconds a new connection has to finish TLS (a real one takes milliseconds)
    max_handshakes: int = 256  # connections in their handshake at once; a new one cuts the oldest
    client_ca: str = ""  # PEM: when set, a client must show a certificate this CA signed (the API server's)
    client_names: frozenset[str] = frozenset()  # when set too: its CN or a DNS SAN must be one of these


DEFAULT = Settings()
Observer = Callable[[Verdict, str, float], None]  # (verdict, webhook, seconds)


class AdmissionServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    # socketserver listens with a backlog of 5: a burst of new connections (an API server opening its pool,
    # 200 clients at once) had its SYNs dropped and retried for over a minute
    request_queue_size = 1024

    def __init__(
        self, address: tuple[str, int], tls: ssl.SSLContext, judgement: Callable[[], Judgement | None], *,
        namespaces: Callable[[str], KubeObject | None] = lambda _: None, observe: Observer = lambda *_: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC), pod_security: PodSecurity | None = None,
        settings: Settings = DEFAULT,
    ) -> None:  # fmt: skip
        super().__init__(address, _Handler)
        self._tls = require_client_certificates(tls, settings.client_ca)
        self.handshakes = Handshakes(settings.max_handshakes, settings.handshake)
        self.judgement, self.namespaces, self.observe = judgement, namespaces, observe
        self.clock, self.pod_security, self.settings = clock, pod_security, settings
        self._slots = threading.BoundedSemaphore(settings.max_connections)
        # The controller's own writes passed the gate under the revision they belong to, which may be newer
        # than the one admission judges by (a revision adding an exception with the object it excepts): judged
        # again here, they could never be applied. So they are admitted unjudged, once we know who we are: the
        # user named in a dry-run Namespace create only this process makes (``nonce``, see serve.py).
        self.me: str | None = None
        self.me_shared = False  # our user name is a superuser's, which other components may share
        self.nonce = secrets.token_hex(8)
        # a connection has one judgement in flight at most: the pool's queue is bounded by max_connections
        self.pool = ThreadPoolExecutor(settings.workers, thread_name_prefix="admission-judge")

    def set_tls(self, tls: ssl.SSLContext) -> None:
        """Serve new connections with this certificate (a rotation); open ones keep theirs."""
        self._tls = require_client_certificates(tls, self.settings.client_ca)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="admission", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.pool.shutdown(wait=False, cancel_futures=True)

    accepted = 0  # connections accepted so far (counted in the accept thread alone)

    def process_request(self, request: Any, client_address: Any) -> None:
        """In the accept thread: wrap (no I/O yet) and count the handshake in, then hand it to its thread."""
        self.accepted += 1
        try:
            # headers and body go out in separate writes: without this, Nagle's algorithm holds the body until
            # the client's delayed ACK (40 ms on Linux), on every answer
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = self._tls.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
        except (OSError, ValueError):  # gone already
            self.shutdown_request(request)
            return
        self.handshakes.begin(connection)
        super().process_request(connection, client_address)

    def service_actions(self) -> None:
        self.handshakes.reap()  # serve_forever's loop, every poll_interval (0.5 s)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Handshake within its deadline, check the peer, take a slot, serve (the caller closes)."""
        try:
            request.settimeout(self.settings.handshake)
            request.do_handshake()
        except (OSError, ValueError):  # failed, cut, slow, or no valid client certificate: this connection only
            return
        finally:
            self.handshakes.end(request)
        if not peer_allowed(request, self.settings.client_ca, self.settings.client_names):
            return
        if not self._slots.acquire(blocking=False):  # over the cap: refuse this one, keep serving the rest
            return
        try:
            request.settimeout(self.settings.idle)
            self.RequestHandlerClass(request, client_address, self)  # type: ignore[arg-type]
        finally:
            self._slots.release()

    def judge(self, webhook: str, data: bytes, deadline: float) -> dict[str, Any]:
        """The AdmissionReview answering ``data``, within ``deadline`` (monotonic)."""
        started = time.monotonic()
        try:
            request = parse_review(data)
        except BadReviewError as error:
            return refusal(error.uid, str(error)) if error.uid else {"error": str(error)}
        shared_pod = request.kind == "Pod" and not request.group and self.me_shared
        if (self._own(request) and not shared_pod) or control_plane(request):
            return response(Verdict(request, True))
        try:
            future = self.pool.submit(self._verdict, webhook, request)
        except RuntimeError:  # the pool is shut down: the server is stopping
            return refusal(request.uid, f"{request.subject}: gitopsguard is stopping; retry", 503)
        try:
            verdict = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except PoolTimeout:
            future.cancel()  # still queued behind slow ones: never judged at all
            verdict = Verdict(request, False, reason=f"{request.subject}: judging took longer than "
                              f"{self.settings.timeout:g}s; denied (fail closed). Simplify the policies, or retry",
                              code=504)  # fmt: skip
        self.observe(verdict, webhook, time.monotonic() - started)  # a timeout is a denial like any other
        return response(verdict)

    def _own(self, request: AdmissionRequest) -> bool:
        """Whether ``request`` is the controller's own (and learn who that is from our probe, once)."""
        probe = (request.kind == "Namespace" and not request.group and request.operation == "CREATE"
                 and request.dry_run and request.name == WHOAMI + self.nonce)  # fmt: skip
        if probe and self.me is None and request.username:
            self.me = request.username
            # a superuser's name is shared (the dev cluster's controller-manager is "admin" too): its Pods
            # are judged, or a Deployment's Pod would pass as ours (red team)
            self.me_shared = SUPERUSERS in request.groups
        return probe or (self.me is not None and request.username == self.me)

    def _verdict(self, webhook: str, request: Any) -> Verdict:
        judgement = self.judgement()  # once: a revision applied meanwhile is used from the next request on
        if webhook == "mutate":
            return mutate_request(request, judgement)
        namespace = request.obj if request.kind == "Namespace" and not request.group else None
        if namespace is None and request.namespace:
            namespace = self.namespaces(request.namespace)
        return validate(request, judgement, now=self.clock(), namespace=namespace, pod_security=self.pod_security)


class _Deadline(io.RawIOBase):
    """A connection's bytes: each read waits as long as the socket's timeout says while no request has begun,
    and only until ``deadline`` (monotonic) once one has; past it, TimeoutError."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self.deadline: float | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the request did not arrive whole before its deadline")
            self.connection.settimeout(left)
        return self.connection.recv_into(buffer)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # the API server keeps its connections alive
    server: AdmissionServer
    deadline = 0.0  # monotonic, by which the request being read must be answered

    def setup(self) -> None:
        super().setup()
        self._reader = _Deadline(self.connection)
        self._buffered = io.BufferedReader(self._reader)
        self.rfile = self._buffered

    def handle_one_request(self) -> None:
        """Wait up to ``idle`` for a request to begin, then read all of it before its deadline."""
        self._reader.deadline = None
        self.connection.settimeout(self.server.settings.idle)
        try:
            begun = self._buffered.peek(1)
        except OSError:  # idle too long, or gone
            begun = b""
        if not begun:
            self.close_connection = True
            return
        self.deadline = time.monotonic() + self.server.settings.timeout
        self._reader.deadline = self.deadline
        super().handle_one_request()

    def do_GET(self) -> None:
        if self.path.partition("?")[0] == "/healthz":
            self._answer(200, b"ok\n", "text/plain")
        else:
            self._answer(404, b"not found\n", "text/plain")

    def do_POST(self) -> None:
        deadline = self.deadline
        length = self.headers.get("Content-Length", "")
        if not (length.isascii() and length.isdigit()) or int(length) > MAX_REVIEW_BYTES:  # "²".isdigit() too
            self._answer(413, f"a body of at most {MAX_REVIEW_BYTES} bytes, with its Content-Length\n".encode(),
                         "text/plain", close=True)  # fmt: skip
            return
        data = self._body(int(length), deadline)
        if data is None:
            self.close_connection = True
            return
        webhook = self.path.partition("?")[0].strip("/")  # the API server adds ?timeout=5s
        if webhook not in WEBHOOKS:
            self._answer(404, b"not found: POST /validate or /mutate\n", "text/plain")
            return
        try:
            answer = self.server.judge(webhook, data, deadline)
        except Exception as error:  # a bug must not end the server; deny this one, saying so
            answer = {"error": f"internal error: {type(error).__name__}"}
        if "error" in answer:
            self._answer(400, f"{answer['error']}\n".encode(), "text/plain", close=True)
            return
        self._answer(200, json.dumps(answer).encode(), "application/json")

    def _body(self, length: int, deadline: float) -> bytes | None:
        """The body, or None when it does not arrive whole before ``deadline``."""
        chunks, remaining = [], length
        while remaining:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.connection.settimeout(left)
            try:
                chunk = self.rfile.read1(min(remaining, 65536))
            except (OSError, ssl.SSLError):
                return None
            if not chunk:
                return None
            chunks.append(chunk)
            remaining -= len(chunk)
        self.connection.settimeout(self.server.settings.idle)
        return b"".join(chunks)

    def _answer(self, status: int, body: bytes, content_type: str, *, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:  # the client went away or stalled
            self.close_connection = True

    def log_message(self, *args: Any) -> None:
        pass
