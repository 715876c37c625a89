"""A local stand-in for Slack's Web API and incoming webhooks, in their wire format: `chat.postMessage`
answers {"ok": true, "channel", "ts", "message"} with HTTP 200, a bad token {"ok": false, "error":
"invalid_auth"} with HTTP 200, and rate limiting HTTP 429 with Retry-After and {"ok": false, "error":
"ratelimited"}; a webhook answers 200 "ok". Failures can be scripted for the next requests, or for every
request to one path (``stuck``: a hostile team webhook that always rate-limits or redirects). It serves
plain HTTP on 127.0.0.1, or HTTPS as ``localhost`` with a certificate made by the real ``openssl``."""

from __future__ import annotations

import functools
import json
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from gitopsguard.notify.outbound import OutboundPolicy

TOKEN = "xoxb-test-token-never-logged"
WEBHOOK_PATH = "/services/T000/B000/team-hook"


@dataclass
class Received:
    where: str  # "chat.postMessage" or the webhook path
    channel: str
    text: str
    at: float


@dataclass
class FakeSlack:
    messages: list[Received] = field(default_factory=list)
    attempts: int = 0
    fail_next: list[int] = field(default_factory=list)  # HTTP statuses to answer before succeeding
    retry_after: str = "1"  # the Retry-After a scripted 429 carries
    stuck: dict[str, tuple[int, dict[str, str]]] = field(default_factory=dict)  # path -> answer, every time
    paths: list[str] = field(default_factory=list)  # every path asked for, in order

    def texts(self, where: str = "chat.postMessage") -> list[str]:
        return [m.text for m in self.messages if m.where == where]

    def handle(self, path: str, headers: Any, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        self.attempts += 1
        self.paths.append(path)
        if path in self.stuck:
            status, extra = self.stuck[path]
            error = {429: "ratelimited", 500: "internal_error"}.get(status)
            return (
                status,
                {"Content-Type": "application/json", **extra},
                json.dumps({"ok": False, "error": error}).encode(),
            )
        if self.fail_next:
            status = self.fail_next.pop(0)
            extra = {"Retry-After": self.retry_after} if status == 429 else {}
            error = "ratelimited" if status == 429 else "internal_error"
            return (
                status,
                {"Content-Type": "application/json", **extra},
                json.dumps({"ok": False, "error": error}).encode(),
            )
        body = self._body(headers, raw)
        if path.startswith("/services/"):
            self.messages.append(Received(path, "", str(body.get("text")), time.monotonic()))
            return 200, {"Content-Type": "text/html"}, b"ok"
        if path != "/api/chat.postMessage":
            return (
                404,
                {"Content-Type": "application/json"},
                json.dumps({"ok": False, "error": "unknown_method"}).encode(),
            )
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            return (
                200,
                {"Content-Type": "application/json"},
                json.dumps({"ok": False, "error": "invalid_auth"}).encode(),
            )
        channel, text = str(body.get("channel")), str(body.get("text"))
        self.messages.append(Received("chat.postMessage", channel, text, time.monotonic()))
        ts = f"{time.time():.6f}"
        answer = {"ok": True, "channel": "C0123456", "ts": ts, "message": {"type": "message", "text": text, "ts": ts}}
        return 200, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(answer).encode()

    @staticmethod
    def _body(headers: Any, raw: bytes) -> dict[str, Any]:
        if "application/json" in (headers.get("Content-Type") or ""):
            return dict(json.loads(raw or b"{}"))
        return {k: v[0] for k, v in parse_qs(raw.decode()).items()}

    @contextmanager
    def serving(self, tls: TLSFiles | None = None) -> Iterator[str]:
        """The base URL: ``http://127.0.0.1:<port>``, or ``https://localhost:<port>`` with ``tls``."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers, data = fake.handle(self.path, self.headers, raw)
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(data))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # Slack takes no GETs; recorded, so that a followed redirect shows
                fake.paths.append(self.path)
                self.send_response(405)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls.cert, tls.key)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"https://localhost:{server.server_port}" if tls else f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            server.server_close()


@dataclass(frozen=True)
class TLSFiles:
    cert: Path  # also the CA a client trusts: the certificate is self-signed
    key: Path


def self_signed(folder: Path) -> TLSFiles:
    """A certificate for ``localhost``, ``fake-slack.test`` (a name only a test resolver knows) and 127.0.0.1,
    made by the real openssl."""
    files = TLSFiles(folder / "fake-slack.crt", folder / "fake-slack.key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,DNS:fake-slack.test,IP:127.0.0.1",
         "-keyout", str(files.key), "-out", str(files.cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return files


@functools.cache
def shared_tls() -> TLSFiles:
    """One certificate for the whole test session."""
    return self_signed(Path(tempfile.mkdtemp(prefix="fake-slack-tls-")))


def trusting(tls: TLSFiles) -> OutboundPolicy:
    """The operator's explicit allowance tests need to reach the fake: its host (localhost, a loopback
    address, refused by default) and its certificate."""
    return OutboundPolicy(hosts=frozenset({"localhost"}), allow_private=True, ca_file=str(tls.cert))
