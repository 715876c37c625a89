"""When a request to the API server is asked again, and after how long: urllib3's ``Retry`` is the policy.

Only what is safe to repeat is repeated: reads, dry runs and server-side apply (the same PATCH stores the
same object). A create, update or delete that may have reached the server is never sent twice, except
after a 429: API Priority and Fairness refuses a request before any handler sees it. The wait is the
server's Retry-After where it gave one (capped), else exponential backoff with jitter; the number of
tries is bounded, and then the last answer (or the connection error) stands.

``Retry`` serves as the policy object only (how many tries are left, how long to wait): the requests go
through aiohttp (``http.py``), and ``rest.RawApi`` asks this module before sending again. Below it,
aiohttp repeats a request once, at once, where a kept-alive connection turns out closed before any byte of
the answer came, for GET, HEAD, OPTIONS, TRACE, PUT and DELETE only (RFC 9112 section 9.3.1.1; the
hand-written stack did the same for every method but POST): never a create, and an update or delete that
had been acted on meets a Conflict (its resourceVersion) or NotFound the second time, which callers handle.
"""

from __future__ import annotations

from collections.abc import Mapping

from urllib3 import HTTPResponse
from urllib3.exceptions import MaxRetryError, ProtocolError
from urllib3.util import Retry

from gitopsguard.cluster.http import Answer

APPLY_PATCH = "application/apply-patch+yaml"
THROTTLED = 429
# 502 and 503: a load balancer or aggregated API in front of the server while it restarts; 504: the server's
# own timeout. Not 500: a webhook that failed or timed out under failurePolicy Fail answers 500, and asking
# again would hold a pass (and the webhook) for the whole budget on an answer that does not change.
TRANSIENT = frozenset({THROTTLED, 502, 503, 504})
# Attempts after the first: backing off from 0.2 s, doubling, at most 5 s each, about 11 s in all; a server
# asking for more waits (Retry-After, capped at 5 s) holds a request at most 30 s. APF asks for 1 s.
TRIES = 6

POLICY = Retry(
    total=TRIES, connect=TRIES, read=TRIES, status=TRIES, other=0, redirect=0,
    backoff_factor=0.2, backoff_jitter=0.2, backoff_max=5.0, retry_after_max=5,
    status_forcelist=TRANSIENT, allowed_methods=None, raise_on_status=False, respect_retry_after_header=True,
)  # fmt: skip
# For the leader lease: a renewal held by retries past the lease's expiry would let two replicas act at once;
# it is tried again on its own short period instead.
ONCE = POLICY.new(total=0, connect=0, read=0, status=0)


def repeatable(method: str, query: Mapping[str, str], content_type: str) -> bool:
    """Whether sending this request twice has the effect of sending it once."""
    if method in ("GET", "HEAD") or query.get("dryRun") == "All":
        return True
    return method == "PATCH" and content_type == APPLY_PATCH


def worth_again(answer: Answer, safe: bool) -> bool:
    """Whether this answer asks for the request again (a 429 always, other transient codes if ``safe``)."""
    return answer.status == THROTTLED or (safe and answer.status in TRANSIENT)


def after_answer(retry: Retry, method: str, path: str, answers: list[Answer]) -> Retry | None:
    """The policy for the next try after these transient answers (waiting as the longest Retry-After asks,
    or backing off), or None when the tries are spent."""
    worst = max(answers, key=lambda a: _seconds(retry, a.retry_after))
    headers = {"Retry-After": worst.retry_after} if _seconds(retry, worst.retry_after) else {}
    response = HTTPResponse(body=b"", status=worst.status, headers=headers, preload_content=True)
    try:
        retry = retry.increment(method, path, response=response)
    except MaxRetryError:
        return None
    retry.sleep(response)
    return retry


def after_drop(retry: Retry, method: str, path: str, error: Exception) -> Retry | None:
    """The policy for the next try after a dropped or silent connection, or None when the tries are spent."""
    try:
        retry = retry.increment(method, path, error=ProtocolError(str(error)))
    except (MaxRetryError, ProtocolError):
        return None
    retry.sleep()
    return retry


def _seconds(retry: Retry, header: str) -> float:
    try:
        return retry.parse_retry_after(header) if header.strip() else 0.0
    except Exception:  # an unreadable header counts as none (urllib3 raises its InvalidHeader)
        return 0.0
