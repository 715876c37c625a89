"""A local stand-in for Slack's Web API and incoming webhooks, in their wire format: `chat.postMessage`
answers {"ok": true, "channel", "ts", "message"} with HTTP 200, a bad token {"ok": false, "error":
"invalid_auth"} with HTTP 200, and rate limiting HTTP 429 with Retry-After and {"ok": false, "error":
"ratelimited"}; a webhook answers 200 "ok". Failures can be scripted for the next requests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

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

    def texts(self, where: str = "chat.postMessage") -> list[str]:
        return [m.text for m in self.messages if m.where == where]

    def handle(self, path: str, headers: Any, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        self.attempts += 1
        if self.fail_next:
            status = self.fail_next.pop(0)
            extra = {"Retry-After": "1"} if status == 429 else {}
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
    def serving(self) -> Iterator[str]:
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

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            server.server_close()
