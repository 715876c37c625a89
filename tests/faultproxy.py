"""A TLS-terminating HTTP/1.1 proxy on loopback in front of the real API server, which throttles, fails,
cuts or stalls the requests a test picks, and forwards the rest untouched.

The proxy has a certificate of its own (made here with ``cryptography``); ``api()`` is an ApiClient with
the real kubeconfig's credentials (bearer tokens, which pass through) aimed at the proxy. A 429 is
answered as API Priority and Fairness answers it in Kubernetes 1.20 (``Retry-After`` header, plain text
body "Too many requests, please try again later."); a 503 as a server in trouble; a reset closes the
connection with an RST and no answer; a stall holds the request that long before forwarding it.
"""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}
Match = Callable[[str, str], bool]  # (method, path with query) -> whether a fault applies
# What kube-apiserver answers a list whose continue token names a revision etcd has compacted (the message of
# k8s.io/apiserver/pkg/storage/etcd3's continue handling, reason Expired, code 410).
EXPIRED_CONTINUE = (
    b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"The provided continue parameter '
    b"is too old to display a consistent list result. You can start a new list without the continue parameter, or "
    b"use the continue token in this response to retrieve the remainder of the results. Continuing with the provided "
    b"token results in an inconsistent list - objects that were created, modified, or deleted between the time the "
    b'first chunk was returned and now may show up in the list.","reason":"Expired","code":410}'
)


@dataclass
class Fault:
    """``times`` requests matching ``match`` get ``kind`` ("throttle", "unavailable", "reset", "stall", "expired":
    a list's continue token the server no longer serves)."""

    kind: str
    match: Match
    times: int
    retry_after: str = "1"
    stall: float = 0.0
    hits: list[str] = field(default_factory=list)  # the requests it was applied to


class FaultProxy:
    def __init__(self, upstream: client.Configuration, workdir: Path) -> None:
        self.upstream = upstream
        self.cert = _self_signed(workdir)
        self.faults: list[Fault] = []
        self.forwarded: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.cert)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def api(self) -> client.ApiClient:
        """An ApiClient that reaches the server only through this proxy."""
        configuration = client.Configuration()
        configuration.host = f"https://127.0.0.1:{self.port}"
        configuration.api_key = dict(self.upstream.api_key)
        configuration.api_key_prefix = dict(self.upstream.api_key_prefix)
        configuration.ssl_ca_cert = str(self.cert)
        return client.ApiClient(configuration)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fault_for(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.match(method, path):
                    fault.times -= 1
                    fault.hits.append(f"{method} {path}")
                    return fault
            self.forwarded.append(f"{method} {path}")
        return None

    def upstream_connection(self) -> http.client.HTTPSConnection:
        url = urlsplit(str(self.upstream.host))
        context = ssl.create_default_context(cafile=self.upstream.ssl_ca_cert or None)
        if getattr(self.upstream, "ca_cert_data", None):
            context.load_verify_locations(cadata=self.upstream.ca_cert_data)
        return http.client.HTTPSConnection(url.hostname or "127.0.0.1", url.port or 443, context=context, timeout=60)


@contextmanager
def fault_proxy(upstream: client.ApiClient, workdir: Path) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream.configuration, workdir)
    try:
        yield proxy
    finally:
        proxy.close()


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # kept-alive connections, as the API server's
        upstream: http.client.HTTPSConnection | None = None

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _any(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            fault = proxy.fault_for(self.command, self.path)
            if fault is not None and fault.kind == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()
                return
            if fault is not None and fault.kind == "throttle":
                self._answer(429, b"Too many requests, please try again later.\n", {"Retry-After": fault.retry_after})
                return
            if fault is not None and fault.kind == "unavailable":
                self._answer(503, b'{"kind":"Status","apiVersion":"v1","status":"Failure","message":"the server is '
                             b'currently unable to handle the request","reason":"ServiceUnavailable","code":503}',
                             {"Content-Type": "application/json"})  # fmt: skip
                return
            if fault is not None and fault.kind == "expired":  # kube-apiserver 1.20's answer to a compacted continue
                self._answer(410, EXPIRED_CONTINUE, {"Content-Type": "application/json"})
                return
            if fault is not None and fault.kind == "stall":
                time.sleep(fault.stall)
            self._forward(body)

        def _forward(self, body: bytes) -> None:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP and k.lower() != "host"}
            for attempt in (1, 2):  # a kept-alive upstream connection the server closed meanwhile
                if self.upstream is None:
                    self.upstream = proxy.upstream_connection()
                try:
                    self.upstream.request(self.command, self.path, body=body or None, headers=headers)
                    response = self.upstream.getresponse()
                    data = response.read()
                    break
                except (OSError, http.client.HTTPException):
                    self.upstream.close()
                    self.upstream = None
                    if attempt == 2:
                        raise
            kept = {k: v for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP}
            self._answer(response.status, data, kept)

        def _answer(self, status: int, data: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _any  # noqa: N815 (http.server names them)

    return Handler


def _self_signed(workdir: Path) -> Path:
    """A key and certificate for 127.0.0.1 in one PEM file (a CA of its own)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gitopsguard fault proxy")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    path = workdir / "faultproxy.pem"
    workdir.mkdir(parents=True, exist_ok=True)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())  # fmt: skip
    path.write_bytes(key_pem + cert.public_bytes(serialization.Encoding.PEM))
    return path
