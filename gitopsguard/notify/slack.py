"""Delivering notices to Slack with slack_sdk: a bot token and channel (``chat.postMessage``) and/or an
incoming webhook, plus a team's own webhook from a Secret in its namespace.

Delivery runs in a thread of its own: a slow or failing Slack never blocks reconciling. The same notice
is sent once. Messages are spaced (Slack allows about one per second per channel), and slack_sdk retries
429s (after Retry-After), 5xx answers and dropped connections. A failed delivery is reported through
``on_failure`` with Slack's error code, never with a token or a webhook URL.
"""

from __future__ import annotations

import base64
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk import WebClient, WebhookClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)  # fmt: skip

from gitopsguard.cluster.rest import RawApi
from gitopsguard.notify.notices import Notice

TEAM_SECRET, TEAM_KEY = "gitopsguard-slack", "webhook-url"


def _retries() -> list:  # type: ignore[type-arg]
    return [RateLimitErrorRetryHandler(max_retry_count=3), ServerErrorRetryHandler(max_retry_count=3),
            ConnectionErrorRetryHandler(max_retry_count=2)]  # fmt: skip


@dataclass(frozen=True)
class SlackSettings:
    token: str | None = None
    channel: str | None = None
    webhook_url: str | None = None
    base_url: str = "https://slack.com/api/"
    min_interval: float = 1.0  # seconds between two messages to one destination


class TeamWebhooks:
    """A namespace's own webhook, from ``Secret/<namespace>/gitopsguard-slack`` (key ``webhook-url``),
    looked up at most once a minute per namespace."""

    def __init__(self, raw: RawApi, ttl: float = 60.0) -> None:
        self._raw, self._ttl = raw, ttl
        self._cache: dict[str, tuple[float, str | None]] = {}

    def __call__(self, namespace: str) -> str | None:
        cached = self._cache.get(namespace)
        if cached is not None and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        status, body = self._raw.request("GET", f"/api/v1/namespaces/{namespace}/secrets/{TEAM_SECRET}")
        encoded = (body.get("data") or {}).get(TEAM_KEY) if status == 200 else None
        url = base64.b64decode(encoded).decode().strip() if encoded else None
        self._cache[namespace] = (time.monotonic(), url)
        return url


class SlackNotifier:
    def __init__(
        self, settings: SlackSettings, *, team_webhook: Callable[[str], str | None] = lambda _: None,
        on_failure: Callable[[str], None] = lambda _: None,
    ) -> None:  # fmt: skip
        self._settings, self._team_webhook, self._on_failure = settings, team_webhook, on_failure
        self._client = WebClient(token=settings.token, base_url=settings.base_url, retry_handlers=_retries())
        self._webhook = WebhookClient(settings.webhook_url, retry_handlers=_retries()) if settings.webhook_url else None
        self._sent: set[str] = set()
        self._last: dict[str, float] = {}
        self._queue: queue.Queue[Notice | None] = queue.Queue()
        self.failures = 0
        self._thread = threading.Thread(target=self._deliver, name="slack", daemon=True)
        self._thread.start()

    def notify(self, notices: list[Notice]) -> None:
        """Queue notices; returns at once."""
        for notice in notices:
            self._queue.put(notice)

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until everything queued so far was delivered or given up on (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.05)

    def _deliver(self) -> None:
        while True:
            notice = self._queue.get()
            try:
                if notice is not None and notice.key not in self._sent:
                    self._sent.add(notice.key)
                    self._send(notice)
            finally:
                self._queue.task_done()

    def _send(self, notice: Notice) -> None:
        text = notice.text()
        channel = self._settings.channel
        if self._settings.token and channel:
            self._spaced("channel", lambda: self._client.chat_postMessage(channel=channel, text=text), notice)
        if self._webhook is not None:
            webhook = self._webhook
            self._spaced("webhook", lambda: webhook.send(text=text), notice)
        team = self._team_webhook(notice.namespace) if notice.namespace else None
        if team:
            client = WebhookClient(team, retry_handlers=_retries())
            self._spaced(f"team:{notice.namespace}", lambda: client.send(text=text), notice)

    def _spaced(self, destination: str, send: Callable[[], object], notice: Notice) -> None:
        wait = self._last.get(destination, 0.0) + self._settings.min_interval - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._last[destination] = time.monotonic()
        try:
            answer = send()
            status = getattr(answer, "status_code", 200)
            if status >= 300:
                raise RuntimeError(f"HTTP {status}")
        except SlackApiError as error:
            self._fail(destination, notice, str(error.response.get("error") or "error"))
        except Exception as error:  # a delivery failure must never reach the reconcile loop
            self._fail(destination, notice, type(error).__name__ + (f": {error}" if "HTTP" in str(error) else ""))

    def _fail(self, destination: str, notice: Notice, why: str) -> None:
        self.failures += 1
        self._on_failure(
            f"Slack ({destination.split(':')[0]}): {notice.event} for {notice.subject} not delivered: {why}"
        )
