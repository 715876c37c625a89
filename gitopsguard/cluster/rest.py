"""JSON in, JSON out (or, for writes, just the new resourceVersion), with the kubeconfig's credentials.

The generated and dynamic clients wrap every response in model objects; at thousands of requests that
cost as much CPU as the API server spent answering them (bench: 16 s of client CPU for 4,040 applies).
This sends and parses plain JSON instead over kept-alive connections (``transport``), with the same TLS
settings, credentials and token refresh. Watches stream through the ApiClient's urllib3 pool.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import urllib3
from kubernetes import client

from gitopsguard import __version__
from gitopsguard.cluster import protobuf
from gitopsguard.cluster.multiplex import Answer, Call
from gitopsguard.cluster.transport import transport_for
from gitopsguard.errors import ClusterError

AUTH_TTL = 5.0  # seconds a credential is reused before the configuration is asked again (it may rotate)
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


WRITE_ACCEPT = f"{protobuf.CONTENT_TYPE}, {JSON}"  # a write's answer, where only its outcome is read


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
    def __init__(self, api: client.ApiClient, timeout: float = 60.0, *, impersonate: str | None = None) -> None:
        self._configuration = api.configuration
        self._host = str(api.configuration.host)  # a property that re-reads the proxy environment each call
        self._pool = api.rest_client.pool_manager
        self._transport = transport_for(api, timeout)
        self._user_agent = f"gitopsguard/{__version__}"  # how the API server's audit log tells our writes apart
        self._impersonate = impersonate  # act as this user (the API server checks we may)
        self._auth: tuple[float, dict[str, str]] = (-AUTH_TTL, {})

    def watch(
        self, path: str, query: dict[str, str], *, read_timeout: float, on_open: Callable[[], None] = lambda: None
    ) -> Iterator[dict[str, Any]]:
        """Stream a watch: one decoded event per line until the server ends it. A refusal comes as one ERROR
        event carrying the server's Status (as the server itself reports an expired resourceVersion), so
        callers read both alike. Raises ClusterError when the connection fails or stays silent for
        ``read_timeout`` seconds (give the server's ``timeoutSeconds`` plus some slack: a healthy watch is
        ended by the server before then). ``on_open`` is called once the server has accepted the watch."""
        headers = self._headers(JSON)
        url = f"{self._host}{path}?{urlencode({**query, 'watch': 'true'})}"
        try:
            response = self._pool.request("GET", url, headers=headers, preload_content=False, retries=False,
                                          timeout=urllib3.Timeout(connect=10, read=read_timeout))  # fmt: skip
            try:
                if response.status != 200:
                    status = parsed(response.read(64 * 1024))
                    yield {"type": "ERROR", "object": {"code": response.status, **status}}
                    return
                on_open()
                for line in response:
                    if line.strip():
                        event = json.loads(line)
                        if not isinstance(event, dict):
                            raise ValueError(f"a watch event that is not an object: {line[:100]!r}")
                        yield event
            finally:
                response.close()  # a watch ended early (or stalled) leaves unread data: never reuse it
        except (urllib3.exceptions.HTTPError, ValueError) as error:
            raise ClusterError(f"{self._host}: watch {path} ended: {error}") from error

    def request(
        self, method: str, path: str, *, query: dict[str, str] | None = None, body: Any = None,
        content_type: str = JSON,
    ) -> tuple[int, dict[str, Any]]:  # fmt: skip
        """(status, parsed body). Raises ClusterError only when the server cannot be reached at all."""
        status, _, data = self._send(method, path, query, body, content_type, JSON)
        return status, parsed(data)

    def write(
        self, method: str, path: str, *, query: dict[str, str] | None = None, body: Any = None,
        content_type: str = JSON,
    ) -> Written:  # fmt: skip
        """A write whose stored object we do not need back: the server answers in protobuf where the kind
        has one, and only the resourceVersion is read from it (a few bytes, not the whole object)."""
        return written(self._send(method, path, query, body, content_type, WRITE_ACCEPT))

    def send_all(self, requests: Sequence[Request], width: int) -> list[Answer]:
        """Many requests, ``width`` at a time, their raw answers in order (decode with ``parsed`` or
        ``written``). Raises ClusterError when the server cannot be reached."""
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
        try:
            return self._transport.send_all(calls, width)
        except ConnectionError as error:
            raise ClusterError(f"{self._host}: the API server is unreachable ({error})") from error

    def _send(
        self, method: str, path: str, query: dict[str, str] | None, body: Any, content_type: str, accept: str
    ) -> tuple[int, str, bytes]:
        headers = self._headers(accept)
        data = body if body is None or isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
        if data is not None:
            headers["Content-Type"] = content_type
        target = path + (f"?{urlencode(query)}" if query else "")
        try:
            return self._transport.send(method, target, data, headers)
        except ConnectionError as error:
            raise ClusterError(f"{self._host}: {method} {path}: the API server is unreachable ({error})") from error

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {"Accept": accept, "User-Agent": self._user_agent}
        if self._impersonate:
            headers["Impersonate-User"] = self._impersonate
        return headers | self._credentials()

    def _credentials(self) -> dict[str, str]:
        """The auth headers, asked of the configuration (which refreshes expiring tokens) every few seconds:
        asking costs as much CPU as sending the request."""
        fetched, headers = self._auth
        if time.monotonic() - fetched > AUTH_TTL:
            headers = {a["key"]: str(a["value"]) for a in self._configuration.auth_settings().values()}
            self._auth = (time.monotonic(), headers)
        return headers


def written(answer: Answer, *, version: bool = True) -> Written:
    """A write's outcome from its answer, in protobuf or JSON; with the stored resourceVersion unless
    ``version`` is False (a dry run's is of no use)."""
    status, kind, data = answer
    ok = 200 <= status < 300
    if ok and not version:
        return Written(status)
    try:
        if kind.startswith(protobuf.CONTENT_TYPE):
            if ok:
                return Written(status, protobuf.resource_version(data))
            return Written(status, message=protobuf.status_message(data) or f"HTTP {status}")
    except protobuf.ProtobufError as error:
        return Written(status if not ok else 502, message=f"unreadable protobuf answer ({error})")
    payload = parsed(data)
    if ok:
        return Written(status, str((payload.get("metadata") or {}).get("resourceVersion") or ""))
    return Written(status, message=message_of(status, payload))


def parsed(data: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(data) if data else {}
    except ValueError:
        payload = {"message": data[:300].decode(errors="replace")}
    return payload if isinstance(payload, dict) else {}


def message_of(status: int, payload: dict[str, Any]) -> str:
    """The server's own explanation of a failed request (its Status ``message``), else the code."""
    return str(payload.get("message") or f"HTTP {status}")
