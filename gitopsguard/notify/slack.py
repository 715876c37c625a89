"""Delivering notices to Slack: the platform's bot token and channel (``chat.postMessage``) and/or incoming
webhook (slack_sdk), plus a team's own webhook from a Secret in its namespace.

Each destination has its own queue and delivery thread (``destination.py``), so a team's broken, slow or
hostile webhook delays nobody else, and the platform's own news waits behind no tenant's (``lanes.py``).
Floods become digests. The same notice is sent once (the memory of what was sent is bounded). A team's
webhook is called only if it passes the operator's outbound policy (``outbound.py``), through a small
``http.client`` sender rather than slack_sdk: slack_sdk cannot connect to the address that was checked,
and its urllib transport follows redirects. A failed delivery is reported through ``on_failure`` with the
destination and Slack's error code or our reason, never with a token or a webhook URL.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from slack_sdk import WebClient, WebhookClient

from gitopsguard.errors import ClusterError, ForbiddenError, NotifyError, UnreachableError
from gitopsguard.notify.destination import Destination, Failure, Reporter
from gitopsguard.notify.lanes import Pace
from gitopsguard.notify.notices import Notice
from gitopsguard.notify.outbound import OutboundPolicy, Resolver, check_url, post, system_resolver, tls_context
from gitopsguard.notify.retry import RetryPolicy, sdk_handlers, send_with_retries

__all__ = [
    "Failure",
    "OutboundPolicy",
    "Pace",
    "RetryPolicy",
    "SecretReader",
    "SlackNotifier",
    "SlackSettings",
    "TeamWebhooks",
]

TEAM_SECRET, TEAM_KEY = "gitopsguard-slack", "webhook-url"
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")  # fullmatch: "$" would let "ns\n" through


@dataclass(frozen=True)
class SlackSettings:
    token: str | None = field(default=None, repr=False)  # secrets: never in a repr, a log or a traceback
    channel: str | None = None
    webhook_url: str | None = field(default=None, repr=False)
    base_url: str = "https://slack.com/api/"
    min_interval: float = 1.0  # seconds between two messages to one destination
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    pace: Pace = field(default_factory=Pace)
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy)  # what a team's webhook may be
    remember: int = 10_000  # keys of notices sent, to send each once (the oldest are forgotten)
    max_teams: int = 1_000  # team destinations at once
    team_idle: float = 300.0  # seconds after which an idle team destination ends its thread


class SecretReader(Protocol):
    """The seam through which the notifier reads a team's Secret without an API client of its own (the import
    contract ``notify-consumes``); the composition root passes ``cluster.secrets.SecretData``."""

    def __call__(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        """The Secret's ``data`` (base64 values), None when there is no such Secret; ClusterError otherwise."""
        ...


class TeamWebhooks:
    """A namespace's own webhook, from ``Secret/<namespace>/gitopsguard-slack`` (key ``webhook-url``),
    looked up at most once a minute per namespace. Raises NotifyError naming the Secret when it cannot be
    read or does not hold text; None when the namespace has none."""

    def __init__(self, secrets: SecretReader, ttl: float = 60.0) -> None:
        self._secrets, self._ttl = secrets, ttl
        self._cache: dict[str, tuple[float, str | None]] = {}

    def __call__(self, namespace: str) -> str | None:
        cached = self._cache.get(namespace)
        if cached is not None and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        url = self._read(namespace)
        self._cache[namespace] = (time.monotonic(), url)
        return url

    def _read(self, namespace: str) -> str | None:
        where = f"Secret/{namespace}/{TEAM_SECRET}"
        if not _NAMESPACE.fullmatch(namespace):  # it becomes part of a request path
            raise NotifyError(f"{where}: not a valid namespace name; no Secret was looked up")
        try:
            data = self._secrets(namespace, TEAM_SECRET)
        except ForbiddenError as error:
            raise NotifyError(f"{where}: the API server refused it; gitopsguard needs get on this Secret") from error
        except UnreachableError as error:
            raise NotifyError(f"{where}: could not be read ({error}); the team's notice was not sent") from error
        except ClusterError as error:
            raise NotifyError(f"{error}; the team's notice was not sent") from error
        encoded = data.get(TEAM_KEY) if data is not None else None
        if encoded is None:
            return None
        try:
            return base64.b64decode(str(encoded), validate=True).decode("utf-8").strip()
        except (binascii.Error, UnicodeDecodeError) as error:
            raise NotifyError(f"{where}: key {TEAM_KEY} is not UTF-8 text; put the webhook URL there") from error


class SlackNotifier:
    def __init__(
        self, settings: SlackSettings, *, team_webhook: Callable[[str], str | None] = lambda _: None,
        on_failure: Callable[[Failure], None] = lambda _: None,
        on_drop: Callable[[str, int], None] = lambda _, __: None,
        resolve: Resolver = system_resolver, sleep: Callable[[float], Any] = time.sleep,
    ) -> None:  # fmt: skip
        self._settings, self._team_webhook, self._on_failure = settings, team_webhook, on_failure
        self._resolve, self._sleep = resolve, sleep
        self._report = Reporter(self._failed, on_drop)
        self._lock = threading.Lock()
        # what was sent, the platform's own news apart: a tenant's churn must not make it forget those
        self._sent: dict[bool, OrderedDict[str, None]] = {True: OrderedDict(), False: OrderedDict()}
        self._teams: dict[str, Destination] = {}
        self._reported: dict[tuple[str, str], float] = {}  # refusals last reported, by (destination, why)
        self._tls = tls_context(settings.outbound)
        self._platform = [self._destination(name, send) for name, send in self._platform_senders()]
        self.failures = 0

    def notify(self, notices: list[Notice]) -> None:
        """Queue notices for every destination they go to; returns at once."""
        for notice in notices:
            if self._first_time(notice):
                for destination in self._platform:
                    destination.put(notice)
                if notice.namespace:
                    self._to_team(notice)

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until everything queued so far was delivered or given up on (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                everyone = self._platform + list(self._teams.values())
            if all(d.idle() for d in everyone):
                return
            time.sleep(0.02)

    def _first_time(self, notice: Notice) -> bool:
        sent, key = self._sent[notice.namespace == ""], notice.key
        with self._lock:
            if key in sent:
                sent.move_to_end(key)
                return False
            sent[key] = None
            if len(sent) > self._settings.remember:
                sent.popitem(last=False)
            return True

    def _to_team(self, notice: Notice) -> None:
        namespace, what = notice.namespace, f"{notice.event} for {notice.subject}"
        if not _NAMESPACE.fullmatch(namespace):  # from a blocked revision: never validated by the API server
            self._refused(Failure("team/-", what, "its namespace is not a valid name"))
            return
        with self._lock:
            team = self._teams.get(namespace)
            if team is None or team.closed:
                if len(self._teams) >= self._settings.max_teams:
                    team = None
                else:
                    team = self._teams[namespace] = self._destination(f"team/{namespace}", self._team_sender(namespace))
            if team is not None:
                team.put(notice)
        if team is None:
            self._refused(Failure(f"team/{namespace}", what, "too many teams at once"))

    def _refused(self, failure: Failure) -> None:
        """A notice no team destination takes. Counted every time; reported (an audit record, written in the
        caller's thread) once a minute per destination and reason, so that a commit naming 10,000 bogus
        namespaces cannot stall the loop writing 10,000 records."""
        self._report.dropped(failure.destination, 1)
        now, key = time.monotonic(), (failure.destination, failure.why)
        with self._lock:
            if now - self._reported.get(key, float("-inf")) < 60:
                return
            if len(self._reported) >= 1000:
                self._reported = {k: t for k, t in self._reported.items() if now - t < 60}
            self._reported[key] = now
        self._failed(failure)

    def _retire(self, destination: Destination) -> bool:
        with self._lock:
            if not destination.retire_if_idle():
                return False
            self._teams.pop(destination.name.removeprefix("team/"), None)
            return True

    def _destination(self, name: str, send: Callable[[str], None]) -> Destination:
        retire = self._retire if name.startswith("team/") else None
        return Destination(name, send, self._settings.pace, self._report, min_interval=self._settings.min_interval,
                           retire=retire, idle=self._settings.team_idle)  # fmt: skip

    def _failed(self, failure: Failure) -> None:
        with self._lock:
            self.failures += 1
        self._on_failure(failure)

    def _platform_senders(self) -> list[tuple[str, Callable[[str], None]]]:
        s, handlers = self._settings, sdk_handlers(self._settings.retry, self._sleep)
        timeout = max(1, round(s.retry.timeout))
        senders: list[tuple[str, Callable[[str], None]]] = []
        if s.token and s.channel:
            client, channel = (
                WebClient(token=s.token, base_url=s.base_url, timeout=timeout, retry_handlers=handlers),
                s.channel,
            )

            def post_message(text: str) -> None:
                client.chat_postMessage(channel=channel, text=text)  # raises SlackApiError when not ok

            senders.append(("channel", post_message))
        if s.webhook_url:
            webhook = WebhookClient(s.webhook_url, timeout=timeout, retry_handlers=handlers)

            def send(text: str) -> None:
                if (status := webhook.send(text=text).status_code) >= 300:
                    raise NotifyError(f"HTTP {status}")

            senders.append(("webhook", send))
        return senders

    def _team_sender(self, namespace: str) -> Callable[[str], None]:
        where, s = f"Secret/{namespace}/{TEAM_SECRET}", self._settings

        def send(text: str) -> None:
            url = self._team_webhook(namespace)
            if not url:
                return  # this team has no webhook of its own
            target = check_url(url, s.outbound, where, self._resolve)
            body = json.dumps({"text": text}).encode()
            send_with_retries(lambda: post(target, body, self._tls, s.retry.timeout), s.retry, self._sleep)

        return send
