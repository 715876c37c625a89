"""How long one message may take: a timeout per request, a few retries, and a cap on how long a 429's
``Retry-After`` is honoured. A destination that asks for a day's pause gets at most ``retry_after_cap``
seconds, and only its own queue waits (every destination has its own delivery thread)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)  # fmt: skip
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from gitopsguard.errors import NotifyError
from gitopsguard.notify.outbound import Answer


@dataclass(frozen=True)
class RetryPolicy:
    timeout: float = 10.0  # seconds per request (connect, and each read)
    retries: int = 3  # after the first attempt
    retry_after_cap: float = 60.0  # the longest Retry-After honoured
    backoff: float = 1.0  # seconds before retrying a 5xx or a dropped connection (doubling)


def retry_after(value: str | None, cap: float) -> float:
    """Seconds to wait for a ``Retry-After``; a missing, odd or huge value waits at most ``cap``."""
    try:
        seconds = float(value) if value is not None and len(value) < 20 else cap
    except ValueError:
        seconds = cap
    return min(max(seconds, 0.0), cap) if seconds == seconds else cap  # NaN waits the cap


class CappedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """slack_sdk's 429 handling, but never sleeping longer than the cap (it would sleep any Retry-After)."""

    def __init__(self, max_retry_count: int, cap: float, sleep: Callable[[float], Any]) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self._cap, self._sleep = cap, sleep

    def prepare_for_next_attempt(
        self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:  # fmt: skip
        if response is None:
            raise NotifyError("Slack: a 429 without an answer") from error
        state.next_attempt_requested = True
        value = next((v[0] for k, v in response.headers.items() if k.lower() == "retry-after" and v), None)
        self._sleep(retry_after(value, self._cap))
        state.increment_current_attempt()


def sdk_handlers(policy: RetryPolicy, sleep: Callable[[float], Any]) -> list[RetryHandler]:
    """Retry handlers for slack_sdk's clients (the platform channel and webhook)."""
    return [CappedRateLimitRetryHandler(policy.retries, policy.retry_after_cap, sleep),
            ServerErrorRetryHandler(max_retry_count=policy.retries),
            ConnectionErrorRetryHandler(max_retry_count=min(policy.retries, 2))]  # fmt: skip


def send_with_retries(attempt: Callable[[], Answer], policy: RetryPolicy, sleep: Callable[[float], Any]) -> None:
    """Send until a 2xx; retry 429 (capped Retry-After), 5xx and dropped connections ``policy.retries``
    times; anything else fails at once. Raises NotifyError saying why, without the URL."""
    why, wait = "", 0.0
    for number in range(policy.retries + 1):
        if number:
            sleep(wait)
        try:
            answer = attempt()
        except OSError as error:  # refused, reset, timed out, TLS: all OSError
            why, wait = type(error).__name__, policy.backoff * 2**number
            continue
        if 200 <= answer.status < 300:
            return
        why = f"HTTP {answer.status}" + _slack_error(answer.body)
        if 300 <= answer.status < 400:
            raise NotifyError(f"answered with a redirect ({why}), which gitopsguard does not follow")
        if answer.status == 429:
            wait = retry_after(answer.retry_after, policy.retry_after_cap)
        elif answer.status >= 500:
            wait = policy.backoff * 2**number
        else:
            raise NotifyError(why)
    raise NotifyError(f"{why}, {policy.retries + 1} attempts")


def _slack_error(body: bytes) -> str:
    """Slack's error code (``invalid_token``, ``no_service``...), only when it looks like one."""
    text = body[:64].decode("ascii", "replace").strip()
    try:
        parsed = json.loads(body)
        text = str(parsed.get("error", "")) if isinstance(parsed, dict) else ""
    except ValueError:
        pass
    return f" {text}" if re.fullmatch(r"[a-z_]{1,40}", text) else ""
