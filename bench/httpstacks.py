"""Experimental ``Transport``s over well-kept HTTP libraries, for ``bench/http_stack.py`` only (issue 18).

They plug into the seam ``gitopsguard.cluster.rest.RawApi`` builds its transport at (``transport_for``), so the
same reconcile code path, request for request, runs over them:

- ``httpx-h2``: one ``httpx.AsyncClient`` with HTTP/2 (ALPN ``h2``); every request of a batch is a stream on
  one TLS connection, as client-go sends them.
- ``httpx-h1``: the same client without HTTP/2, up to ``width`` HTTP/1.1 connections (h11, pure Python).
- ``aiohttp``: one ``aiohttp.ClientSession``, up to ``width`` HTTP/1.1 connections (its C parser).

A batch (``send_all``) runs ``width`` worker coroutines on the transport's own event loop, each taking the next
call, so at most ``width`` are in flight, as ``multiplex.send_all`` does. Transport failures become
``ConnectionError``, the seam's contract. Neither library retries a request here (the hand-written stack repeats
a non-POST once on a kept-alive connection the server had closed); a benchmark run that hits one fails loudly.

Needs ``httpx[http2]`` and ``aiohttp``, installed in a separate venv (see ``bench/README.md``), never in the
project's.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

from kubernetes import client

Call = tuple[str, str, bytes | None, dict[str, str]]  # method, target, body, headers (multiplex.Call)
Answer = tuple[int, str, bytes]  # status, Content-Type, body (multiplex.Answer)
T = TypeVar("T")

# httpx and aiohttp would ask for gzip; the hand-written stack does not, and the API server compresses
# answers over 128 KB for a client that asks (APIResponseCompression), which would change its CPU, not ours.
IDENTITY = {"Accept-Encoding": "identity"}


def tls_context(configuration: client.Configuration) -> ssl.SSLContext:
    """The kubeconfig's TLS settings (CA, client certificate, verification), as ``transport._tls_context``."""
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file)
    return context


class _LoopTransport:
    """A private event loop, driven by whichever thread calls (one at a time): RawApi's callers are sync."""

    def __init__(self, api: client.ApiClient, timeout: float) -> None:
        self.base = str(api.configuration.host).rstrip("/")
        self.timeout = timeout
        self.tls = tls_context(api.configuration) if urlsplit(self.base).scheme == "https" else None
        self.loop = asyncio.new_event_loop()
        self._lock = threading.Lock()
        self.requests = 0  # how many went out this way (the bench checks the pass used this transport)
        self.versions: set[str] = set()  # HTTP versions the server answered with

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            return self.loop.run_until_complete(work)

    async def one(self, call: Call) -> Answer:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Close the connections and the loop (RawApi never closes its transport; the bench does, untimed)."""
        self.run(self.aclose())
        self.loop.close()

    def send(self, method: str, target: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        return self.run(self._guarded(lambda: self.one((method, target, body, headers))))

    def send_all(self, calls: Sequence[Call], width: int) -> list[Answer]:
        return self.run(self._guarded(lambda: self._batch(calls, max(1, width))))

    async def _batch(self, calls: Sequence[Call], width: int) -> list[Answer]:
        answers: list[Answer | None] = [None] * len(calls)
        upcoming = iter(range(len(calls)))

        async def worker() -> None:
            for index in upcoming:  # one shared iterator: each worker takes the next call
                answers[index] = await self.one(calls[index])

        await asyncio.gather(*(worker() for _ in range(min(width, len(calls)))))
        return answers  # type: ignore[return-value]

    async def _guarded(self, work: Callable[[], Awaitable[T]]) -> T:
        try:
            return await work()
        except (TimeoutError, OSError) as error:
            raise ConnectionError(str(error) or type(error).__name__) from error
        except Exception as error:  # the library's own transport errors
            if type(error).__module__.split(".")[0] in ("httpx", "httpcore", "aiohttp", "h2"):
                raise ConnectionError(f"{type(error).__name__}: {error}") from error
            raise


class HttpxTransport(_LoopTransport):
    def __init__(self, api: client.ApiClient, timeout: float, *, http2: bool, connections: int = 64) -> None:
        super().__init__(api, timeout)
        import httpx

        self._client = httpx.AsyncClient(
            http2=http2,
            verify=self.tls or True,
            timeout=timeout,
            headers=IDENTITY,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )

    async def one(self, call: Call) -> Answer:
        method, target, body, headers = call
        response = await self._client.request(method, self.base + target, content=body, headers=headers)
        self.requests += 1
        self.versions.add(response.http_version)
        return response.status_code, response.headers.get("content-type", ""), response.content

    async def aclose(self) -> None:
        await self._client.aclose()


class AiohttpTransport(_LoopTransport):
    def __init__(self, api: client.ApiClient, timeout: float, *, connections: int = 64) -> None:
        super().__init__(api, timeout)
        import aiohttp

        async def session() -> aiohttp.ClientSession:  # a session belongs to the loop it is made in
            connector = aiohttp.TCPConnector(limit=connections, ssl=self.tls if self.tls else False)
            return aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=timeout), headers=IDENTITY
            )

        self._session = self.run(session())

    async def one(self, call: Call) -> Answer:
        method, target, body, headers = call
        # the target is already encoded (RawApi's urlencode); aiohttp must not encode it again
        import yarl

        url = yarl.URL(self.base + target, encoded=True)
        async with self._session.request(method, url, data=body, headers=headers) as response:
            data = await response.read()
            self.requests += 1
            version = response.version
            self.versions.add(f"HTTP/{version.major}.{version.minor}" if version else "HTTP/?")
            return response.status, response.headers.get("Content-Type", ""), data

    async def aclose(self) -> None:
        await self._session.close()


STACKS: dict[str, Callable[[client.ApiClient, float], Any] | None] = {
    "today": None,  # gitopsguard.cluster.transport.transport_for, unchanged
    "httpx-h2": lambda api, timeout: HttpxTransport(api, timeout, http2=True),
    "httpx-h1": lambda api, timeout: HttpxTransport(api, timeout, http2=False),
    "aiohttp": lambda api, timeout: AiohttpTransport(api, timeout),
}
