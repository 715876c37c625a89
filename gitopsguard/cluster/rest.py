"""JSON in, JSON out (or, for writes, just the new resourceVersion), with the kubeconfig's credentials.

The generated and dynamic clients wrap every response in model objects; at thousands of requests that
cost as much CPU as the API server spent answering them (bench: 16 s of client CPU for 4,040 applies).
This sends and parses plain JSON instead, requests and watches alike, over aiohttp's kept-alive
connections (``http``) with the kubeconfig's TLS settings; the Authorization header is asked of the
configuration at every call, so a token that rotates (a bound service account token, an exec plugin's) is
picked up as it changes.

Here, and only here, an answer becomes an error: the verbs (``call``, ``get``, ``delete``) raise the typed
``ClusterError`` of ``error_for`` with the object named, so nothing above ``cluster/`` reads a status code.
Transient failures are asked again as ``retries`` allows, before anyone sees them.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlencode

from kubernetes import client
from urllib3.util import Retry

from gitopsguard import __version__
from gitopsguard.cluster import retries
from gitopsguard.cluster.http import Answer, Call, Http
from gitopsguard.cluster.impersonation import RBAC_HINT, ServiceAccount, refused_impersonation
from gitopsguard.errors import (
    ClusterError,
    ConflictError,
    ForbiddenError,
    ImpersonationRefusedError,
    InvalidError,
    NotFoundError,
    ServerTimeoutError,
    TooManyRequestsError,
    UnavailableError,
    UnreachableError,
)

JSON = "application/json"


@dataclass(frozen=True)
class Written:
    """A write's answer when only its outcome matters: the stored resourceVersion, or why it failed."""

    status: int
    resource_version: str = ""
    message: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def error(self, subject: str) -> ClusterError | None:
        """The typed error of a failed write (None when it succeeded), its message starting with ``subject``."""
        return None if self.ok else error_for(self.status, {"message": self.message}, subject)


@dataclass(frozen=True)
class Request:
    """One request of a batch (``RawApi.send_all``)."""

    method: str
    path: str
    query: dict[str, str]
    body: bytes | None
    content_type: str = JSON
    accept: str = JSON


class RawApi:
    def __init__(
        self, api: client.ApiClient, timeout: float = 60.0, *, impersonate: str | None = None,
        retry: Retry = retries.POLICY,
    ) -> None:  # fmt: skip
        self._retry = retry  # when and how often a transient failure is asked again (``retries``)
        self._configuration = api.configuration
        self._http = Http(api.configuration, timeout)
        self._host = self._http.base
        self._user_agent = f"gitopsguard/{__version__}"  # how the API server's audit log tells our writes apart
        self._impersonate = impersonate  # act as this user (the API server checks we may)
        self._acting_as: dict[str, str] = {}  # a unit's service account (``impersonating``)

    def impersonating(self, account: ServiceAccount) -> RawApi:
        """The same connections and settings, every request sent as ``account`` (``impersonation.py``)."""
        twin = copy.copy(self)  # shares the Http, so its connection pool: a unit's identity costs no sockets
        twin._impersonate, twin._acting_as = None, account.headers()
        return twin

    def watch(
        self, path: str, query: dict[str, str], *, read_timeout: float, on_open: Callable[[], None] = lambda: None
    ) -> Generator[dict[str, Any], None, None]:
        """Stream a watch: one decoded event per line until the server ends it. A refusal comes as one ERROR
        event carrying the server's Status (as the server itself reports an expired resourceVersion), so
        callers read both alike. Raises ClusterError when the connection fails or stays silent for
        ``read_timeout`` seconds (give the server's ``timeoutSeconds`` plus some slack: a healthy watch is
        ended by the server before then). ``on_open`` is called once the server has accepted the watch."""
        target = f"{path}?{urlencode({**query, 'watch': 'true'})}"
        try:
            stream = self._http.stream(target, self._headers(JSON), read_timeout)
            try:
                if stream.status != 200:
                    yield {"type": "ERROR", "object": {"code": stream.status, **parsed(stream.head(64 * 1024))}}
                    return
                on_open()
                for line in stream.lines():
                    if line.strip():
                        event = json.loads(line)
                        if not isinstance(event, dict):
                            raise ValueError(f"a watch event that is not an object: {line[:100]!r}")
                        yield event
            finally:
                stream.close()  # a watch ended early (or stalled) leaves unread data: never reused
        except (ConnectionError, ValueError, RecursionError) as error:  # RecursionError: as in answer_object
            raise ClusterError(f"{self._host}: watch {path} ended: {error}") from error

    def call(
        self, method: str, path: str, subject: str = "", *, query: dict[str, str] | None = None, body: Any = None,
        content_type: str = JSON,
    ) -> dict[str, Any]:  # fmt: skip
        """The parsed answer of a request that succeeded; else the typed ClusterError of ``error_for``, its
        message starting with ``subject`` (the object, ``ConfigMap/ns/name``; the method and path if none)."""
        status, _, data, retry_after = self._send(method, path, query, body, content_type, JSON)
        if 200 <= status < 300:
            return answer_object(data, subject or f"{method} {path}")
        raise error_for(status, parsed(data), subject or f"{method} {path}", retry_after=retry_after)

    def get(self, path: str, subject: str = "", *, query: dict[str, str] | None = None) -> dict[str, Any]:
        """One object or list; NotFoundError when absent, or another ClusterError."""
        return self.call("GET", path, subject, query=query)

    def delete(self, path: str, subject: str = "", *, body: Any = None) -> dict[str, Any]:
        """Delete one object; NotFoundError when it was already gone, or another ClusterError."""
        return self.call("DELETE", path, subject, body=body)

    def request(
        self, method: str, path: str, *, query: dict[str, str] | None = None, body: Any = None,
        content_type: str = JSON,
    ) -> tuple[int, dict[str, Any]]:  # fmt: skip
        """(status, parsed body), for ``cluster/`` modules only (others use the verbs). Raises ClusterError
        (UnreachableError) only when the server cannot be reached at all."""
        answer = self._send(method, path, query, body, content_type, JSON)
        if 200 <= answer.status < 300:
            return answer.status, answer_object(answer.body, f"{method} {path}")
        return answer.status, parsed(answer.body)

    def write(
        self, method: str, path: str, *, query: dict[str, str] | None = None, body: Any = None,
        content_type: str = JSON,
    ) -> Written:  # fmt: skip
        """A write whose stored object we do not need back: its outcome and the stored resourceVersion."""
        return written(self._send(method, path, query, body, content_type, JSON))

    def send_all(self, requests: Sequence[Request], width: int) -> list[Answer]:
        """Many requests, ``width`` at a time, their raw answers in order (decode with ``parsed`` or
        ``written``). Raises ClusterError when the server cannot be reached."""
        answers: list[Answer | None] = [None] * len(requests)
        self.send_each(requests, width, answers.__setitem__)
        return answers  # type: ignore[return-value]

    def send_each(self, requests: Sequence[Request], width: int, take: Callable[[int, Answer], None]) -> None:
        """As ``send_all``, each request's final answer (after the retries ``retries`` allows) handed to
        ``take(index, answer)`` as it arrives, on the event loop's thread (``Http.send_each``: quick, never
        blocking), so that a batch's answers are not all held at once. ``take`` may be called again for the
        same index when a dropped connection made the whole batch go out again: the later answer stands."""
        calls = self._calls(requests)
        safe = [retries.repeatable(r.method, r.query, r.content_type) for r in requests]
        pending: dict[int, Answer] = {}  # throttled or transient answers, asked again below

        def taken(i: int, answer: Answer) -> None:
            if retries.worth_again(answer, safe[i]):
                pending[i] = answer
            else:
                pending.pop(i, None)
                take(i, answer)

        retry = self._retry
        while True:
            pending.clear()  # a batch sent again whole answers each request again
            try:
                self._http.send_each(calls, width, taken)
                self._again_where_transient(calls, width, pending, taken)
                break
            except ConnectionError as error:
                # One broken connection fails the batch; sent again whole only when every request is safe.
                again = retries.after_drop(retry, "BATCH", "", error) if all(safe) else None
                if again is None:
                    raise UnreachableError(f"{self._host}: the API server is unreachable ({error})") from error
                retry = again
        for i, answer in sorted(pending.items()):  # the tries are spent: the last answer stands
            take(i, answer)

    def _calls(self, requests: Sequence[Request]) -> list[Call]:
        headers: dict[tuple[str, str], dict[str, str]] = {}  # shared by the calls alike (never changed)
        queries: dict[tuple[tuple[str, str], ...], str] = {}
        calls: list[Call] = []
        for r in requests:
            if (r.accept, r.content_type) not in headers:
                headers[(r.accept, r.content_type)] = self._headers(r.accept) | {"Content-Type": r.content_type}
            pairs = tuple(r.query.items())
            if pairs not in queries:
                queries[pairs] = f"?{urlencode(pairs)}" if pairs else ""
            calls.append((r.method, r.path + queries[pairs], r.body, headers[(r.accept, r.content_type)]))
        return calls

    def _again_where_transient(
        self, calls: list[Call], width: int, pending: dict[int, Answer], taken: Callable[[int, Answer], None]
    ) -> None:
        """Asks again, together, for the requests whose answers in ``pending`` were throttled or transient (one
        bounded budget for the batch: its answers come in the same few seconds); what stays transient stays in
        ``pending``."""
        retry = self._retry
        while pending:
            next_retry = retries.after_answer(retry, "BATCH", "", list(pending.values()))
            if next_retry is None:
                return
            retry = next_retry
            again = sorted(pending)
            self._http.send_each([calls[i] for i in again], width, partial(_at, again, taken))

    def _send(
        self, method: str, path: str, query: dict[str, str] | None, body: Any, content_type: str, accept: str
    ) -> Answer:
        headers = self._headers(accept)
        data = body if body is None or isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
        if data is not None:
            headers["Content-Type"] = content_type
        target = path + (f"?{urlencode(query)}" if query else "")
        safe = retries.repeatable(method, query or {}, content_type)
        retry: Retry | None = self._retry
        while True:
            try:
                answer = self._http.send(method, target, data, headers)
            except ConnectionError as error:
                retry = retries.after_drop(retry, method, path, error) if safe and retry else None
                if retry is None:
                    raise UnreachableError(
                        f"{self._host}: {method} {path}: the API server is unreachable ({error})"
                    ) from error
                continue
            if not retries.worth_again(answer, safe):
                return answer
            retry = retries.after_answer(retry, method, path, [answer]) if retry else None
            if retry is None:
                return answer

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {"Accept": accept, "User-Agent": self._user_agent}
        if self._impersonate:
            headers["Impersonate-User"] = self._impersonate
        return headers | self._acting_as | self._credentials()

    def _credentials(self) -> dict[str, str]:
        """The Authorization header, asked of the configuration at every call: its refresh hook renews an
        expiring token, and a bound service account token rotates under us (never kept here)."""
        value = self._configuration.get_api_key_with_prefix("BearerToken", alias="authorization")
        return {"Authorization": str(value)} if value else {}


def _at(indices: list[int], take: Callable[[int, Answer], None], j: int, answer: Answer) -> None:
    """``take`` of the answer to the ``j``th request of a batch made of ``indices``' requests."""
    take(indices[j], answer)


def written(answer: Answer, *, version: bool = True) -> Written:
    """A write's outcome from its (JSON) answer; with the stored resourceVersion unless ``version`` is False
    (a dry run's is of no use, and its answer is then not parsed at all)."""
    status, _, data, _ = answer
    ok = 200 <= status < 300
    if ok and not version:
        return Written(status)
    payload = parsed(data)
    if ok:
        return Written(status, str((payload.get("metadata") or {}).get("resourceVersion") or ""))
    return Written(status, message=message_of(status, payload))


def parsed(data: bytes) -> dict[str, Any]:
    """A failed answer's Status, for its message and reason; never raises (an answer that is not JSON gives its
    first bytes as the message). A successful answer is read with ``answer_object``, which refuses what this
    would make up."""
    try:
        payload = json.loads(data) if data else {}
    except (ValueError, RecursionError):
        payload = {"message": data[:300].decode(errors="replace")}
    return payload if isinstance(payload, dict) else {}


def answer_object(data: bytes, subject: str) -> dict[str, Any]:
    """The object (or list) a successful answer carries; ClusterError naming ``subject`` when it carries none.
    Whoever may write a custom resource can nest it about 1,000 levels deep: the API server stores and serves
    it, and Python's json raises RecursionError on it. Such an answer must neither crash a reader nor pass for
    an empty object or list (a list read as empty would say the objects are gone)."""
    try:
        payload = json.loads(data) if data else {}
    except RecursionError as error:
        raise ClusterError(
            f"{subject}: the answer is nested deeper than this client reads (about "
            f"{sys.getrecursionlimit()} levels); find the object and remove or flatten it"
        ) from error
    except ValueError as error:
        raise ClusterError(f"{subject}: the answer is not JSON ({error}); is the server a Kubernetes API "
                           "server?") from error  # fmt: skip
    if not isinstance(payload, dict):
        raise ClusterError(f"{subject}: the answer is JSON but not an object; is the server a Kubernetes API server?")
    return payload


def message_of(status: int, payload: dict[str, Any]) -> str:
    """The server's own explanation of a failed request (its Status ``message``), else the code."""
    return str(payload.get("message") or f"HTTP {status}")


def error_for(status: int, payload: dict[str, Any], subject: str, *, retry_after: str = "") -> ClusterError:
    """The typed error of a failed answer (its Status ``payload``), the message ``subject: <server's words>``
    followed by what to do next. The one translation from HTTP to gitopsguard (``errors.py`` has the tree)."""
    message = f"{subject}: {message_of(status, payload)}"
    reason = str(payload.get("reason") or "")
    if status == 404:
        return NotFoundError(message)
    if status == 409:
        return ConflictError(f"{message}; read it again and retry")
    if refused_impersonation(status, message):
        return ImpersonationRefusedError(f"{message}; gitopsguard's own account may not act as this unit's service "
                                         f"account: {RBAC_HINT}")  # fmt: skip
    if status == 403:  # the server names the user refused: gitopsguard's account, or the unit's it acts as
        return ForbiddenError(f"{message}; grant the user it names this verb on this object (RBAC)")
    if status == 401:
        return ForbiddenError(
            f"{message}; the server did not accept gitopsguard's credentials (an expired token or "
            "certificate, or a kubeconfig for another cluster): renew them and restart"
        )
    if status in (400, 422):
        return InvalidError(message, causes=_causes(payload))
    if status == 429:
        return TooManyRequestsError(f"{message}; the server is throttling us", delay=_delay(retry_after, payload))
    if status == 504 or reason in ("ServerTimeout", "Timeout"):
        return ServerTimeoutError(f"{message}; the server gave up in time, the same request may succeed")
    if status in (502, 503):
        return UnavailableError(f"{message}; the API server is failing for now", delay=_delay(retry_after, payload))
    return ClusterError(f"{message} (HTTP {status})")


def _causes(payload: dict[str, Any]) -> tuple[dict[str, str], ...]:
    causes = (payload.get("details") or {}).get("causes") if isinstance(payload.get("details"), dict) else None
    if not isinstance(causes, list):
        return ()
    return tuple({str(k): str(v) for k, v in cause.items()} for cause in causes if isinstance(cause, dict))


def _delay(retry_after: str, payload: dict[str, Any]) -> float | None:
    """Seconds the server asked us to wait: its Retry-After header, else its Status's retryAfterSeconds."""
    details = payload.get("details") if isinstance(payload.get("details"), dict) else {}
    for value in (retry_after.strip(), (details or {}).get("retryAfterSeconds")):
        if isinstance(value, (int, str)) and str(value).isascii() and str(value).isdigit() and len(str(value)) < 7:
            return float(value)
    return None
