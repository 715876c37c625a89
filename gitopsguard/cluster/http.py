"""HTTP/1.1 to the API server through aiohttp: the one path ``rest.RawApi``'s requests and watches take.

Chosen by measurement (issue 18, ``bench/README.md``): on the 2,020-object initial apply aiohttp's wall time was
within 10% of the hand-written HTTP/1.1 stack it replaced, so that stack (about 700 lines) went.

The callers are synchronous threads (the loop, the live cache's watches, the live scan, the grant keeper);
aiohttp is asynchronous. One event loop per process runs in a daemon thread (``EventLoop``), and a caller
submits a coroutine and waits for its result. The thread is under the lifeline (``gitopsguard/lifeline.py``):
should its loop ever stop, the thread dies raising, which ends a process that installed the lifeline; a
caller waiting meanwhile is told (``ClusterError``) instead of waiting forever.

Each ``Http`` (one per RawApi) has sessions of its own, so one part's flood of requests never holds the
connections another part waits on (the admission webhook reads Namespaces while the loop's applies, waiting
on that webhook, hold theirs): requests share at most ``CONNECTIONS`` kept-alive connections; a watch holds
one connection of its own for its whole length.

TLS is the kubeconfig's: its CA (file or data) and nothing else, its client certificate and key, the host
name checked unless the kubeconfig turns verification off, its TLS server name; its HTTP(S) proxy. Nothing
more: no redirect is followed (the Authorization header never leaves for another host), no cookie kept, no
proxy taken from the environment beyond what the configuration took, no compression asked for.

The seam's contract (``Http.send``, ``send_all``, ``stream``): a failure to reach the server, a dropped
connection or a silent one raises ``ConnectionError`` (``rest`` decides what is asked again and turns the
rest into typed errors); a request that cannot be written as asked raises ``ClusterError`` before anything
is sent.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import os
import queue
import re
import ssl
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlsplit

import aiohttp
from aiohttp.http_exceptions import HttpProcessingError
from kubernetes.client import Configuration
from kubernetes.client.rest import should_bypass_proxies
from yarl import URL

from gitopsguard.errors import ClusterError

Call = tuple[str, str, bytes | None, dict[str, str]]  # method, target (path and query, encoded), body, headers
T = TypeVar("T")

# Kept-alive connections per Http for requests: a batch has up to apply.WIDTH (64) requests in flight.
CONNECTIONS = 64
# Seconds an idle connection is kept for the next request. The API server keeps one longer (measured on the
# dev cluster: kube-apiserver 1.20.2 had not closed an idle connection after 400 s), so we always close first
# and never write a request into a connection it is closing.
IDLE = 60.0
MAX_EVENT = 16 * 1024 * 1024  # bytes in one watch event (etcd stores objects up to 1.5 MiB; JSON escapes grow them)
# Bytes of a watch's body read ahead of the thread reading it (``_Feed``): a few hundred events of a few KiB.
FEED_BOUND = 256 * 1024
LIVENESS = 1.0  # seconds between checks, while waiting for an answer, that the event loop is still running
# aiohttp asks for gzip by default; the API server then compresses answers over 128 KiB, which costs it CPU
# for no gain on a link as short as a Pod's to its API server. Asked for as the replaced stack asked.
IDENTITY = {"Accept-Encoding": "identity"}
# A path and query already encoded: printable ASCII without space, and without "#", which would end the path
# there (a DELETE of ".../configmaps/#" would go out as one of ".../configmaps/", the whole collection)
# Bytes a TLS connection reads from its socket at a time. asyncio gives every TLS connection a read buffer of
# 256 KiB, zero-filled (so resident) as it connects: 16 MiB for a batch's 64 connections, the larger part of the
# peak RSS issue 18 added (bench/README.md). A TLS record carries at most 16 KiB, so 16 KiB still takes a whole
# record a read; reading 20 answers of 4 MiB used the same CPU with 16, 32, 64 and 256 KiB (noise: 0.18-0.27 s),
# and 16 rather than 32 KiB is 1 MiB less for a batch's 64 connections, held for as long as they are kept.
# asyncio offers no per-connection setting; its class attribute is the setting, and this module is the
# process's only user of asyncio (and of its TLS).
READ_BUFFER = 16 * 1024
asyncio.sslproto.SSLProtocol.max_size = READ_BUFFER
_TARGET = re.compile(r"/[\x21\x22\x24-\x7e]*")
_DOT_SEGMENT = re.compile(r"/\.\.?(?:[/?]|$)")  # "/./" or "/../": not a name; a path a server would resolve


class Answer(NamedTuple):
    """One raw answer. ``retry_after`` is the Retry-After header (a 429 or 503 says when to ask again)."""

    status: int
    content_type: str
    body: bytes
    retry_after: str = ""


class EventLoop:
    """An asyncio loop running forever in a daemon thread; ``run`` takes coroutines from other threads."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.pid = os.getpid()
        self.thread = threading.Thread(target=self._serve, name="http-loop", daemon=True)
        running = threading.Event()
        self.loop.call_soon(running.set)  # the loop's first act: callers may submit from then on
        self.thread.start()
        if not running.wait(30):
            raise ClusterError("the HTTP event loop did not start within 30 s; restart gitopsguard")

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        # Nothing stops this loop on purpose: dying loudly lets the lifeline end the process.
        raise RuntimeError("the HTTP event loop stopped: no request to the API server can be answered")

    @property
    def alive(self) -> bool:
        return self.thread.is_alive() and self.loop.is_running()

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """``work``'s result, run on the loop; its exception, raised here. ClusterError if the loop is dead."""
        if threading.current_thread() is self.thread:
            work.close()
            raise RuntimeError("EventLoop.run called on the event loop's own thread (it would wait on itself)")
        if not self.alive:
            work.close()
            raise ClusterError("the HTTP event loop is not running; restart gitopsguard")
        future = asyncio.run_coroutine_threadsafe(work, self.loop)
        try:
            while True:
                try:
                    return future.result(timeout=LIVENESS)
                except TimeoutError:
                    if future.done():
                        raise  # the work's own TimeoutError
                    if not self.alive:
                        raise ClusterError("the HTTP event loop stopped while a request was under way; restart "
                                           "gitopsguard") from None  # fmt: skip
        finally:
            # A caller that stops waiting (interrupted, SIGTERM, the loop dead) stops the work too: the rest of
            # a batch is not sent behind its back.
            future.cancel()

    def soon(self, work: Coroutine[Any, Any, object]) -> None:
        """Start ``work`` without waiting for it (from any thread, the loop's own included)."""
        if self.alive:
            asyncio.run_coroutine_threadsafe(work, self.loop)
        else:
            work.close()


_shared: EventLoop | None = None
_shared_lock = threading.Lock()


def event_loop() -> EventLoop:
    """The process's event loop (a new one in a forked child: threads do not survive a fork)."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared.pid != os.getpid():
            _shared = EventLoop()
        return _shared


class Http:
    """The connections of one RawApi to the API server of ``configuration`` (a kubernetes Configuration)."""

    def __init__(self, configuration: Configuration, timeout: float, *, connections: int = CONNECTIONS) -> None:
        self.base = str(configuration.host).rstrip("/")
        tls = tls_context(configuration) if self.base.startswith("https:") else None
        self._options = _request_options(configuration, self.base)
        # connect: a connection from the pool, or a new one with its TLS handshake; sock_read: silence while
        # an answer is awaited or read (a dead peer, a stalled proxy)
        self._timeout = aiohttp.ClientTimeout(total=None, connect=timeout, sock_read=timeout)
        self._loop = event_loop()
        self._requests, self._watches = self._loop.run(_sessions(tls, connections))
        weakref.finalize(self, _close, self._loop, self._requests, self._watches)

    def send(self, method: str, target: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        """One request; ConnectionError when the server cannot be reached or the connection fails."""
        url = self._url(method, target)
        return self._loop.run(_guarded(self._one(method, url, body, headers)))

    def send_all(self, calls: Sequence[Call], width: int) -> list[Answer]:
        """Many requests, at most ``width`` at a time, answers in order; ConnectionError as ``send``, and
        then none of the batch is sent any more."""
        answers: list[Answer | None] = [None] * len(calls)
        self.send_each(calls, width, answers.__setitem__)
        return answers  # type: ignore[return-value]

    def send_each(self, calls: Sequence[Call], width: int, take: Callable[[int, Answer], None]) -> None:
        """As ``send_all``, each answer handed to ``take(index, answer)`` as it arrives instead of all at the
        end, so that a caller keeps only what it needs of each (a batch of 5,000 dry runs held about 5 MB of
        JSON answers until its end: bench/README.md, "Memory"). ``take`` runs on the event loop's thread: it
        must be quick and must not block; an exception it raises stops the batch and is raised here."""
        for method, target, _, _ in calls:
            _check(method, target)  # every target before anything is sent; each URL is made as it is sent
        self._loop.run(_guarded(self._batch(calls, max(1, width), take)))

    def stream(self, target: str, headers: dict[str, str], read_timeout: float) -> Stream:
        """A GET whose answer is read as it comes (a watch): open once the status and headers are in.
        ConnectionError as ``send``, and when nothing arrives for ``read_timeout`` seconds while reading."""
        url = self._url("GET", target)
        timeout = aiohttp.ClientTimeout(total=None, connect=self._timeout.connect, sock_read=read_timeout)
        opening = self._watches.get(url, headers=headers, timeout=timeout, allow_redirects=False, **self._options)
        return Stream(self._loop, self._loop.run(_guarded(opening)))

    def _url(self, method: str, target: str) -> URL:
        _check(method, target)
        return URL(self.base + target, encoded=True)

    async def _one(self, method: str, url: URL, body: bytes | None, headers: dict[str, str]) -> Answer:
        async with self._requests.request(method, url, data=body, headers=headers, timeout=self._timeout,
                                          allow_redirects=False, **self._options) as response:  # fmt: skip
            data = await response.read()
            got = response.headers
            return Answer(response.status, got.get("Content-Type", ""), data, got.get("Retry-After", ""))

    async def _batch(self, calls: Sequence[Call], width: int, take: Callable[[int, Answer], None]) -> None:
        upcoming = iter(range(len(calls)))

        async def worker() -> None:
            for i in upcoming:  # one iterator shared by the workers: each takes the next call
                method, target, body, headers = calls[i]
                take(i, await self._one(method, URL(self.base + target, encoded=True), body, headers))

        try:
            async with asyncio.TaskGroup() as group:  # one failure cancels the rest: nothing more goes out
                for _ in range(min(width, len(calls))):
                    group.create_task(worker())
        except ExceptionGroup as failed:
            raise failed.exceptions[0] from None


class Stream:
    """An answer read as it arrives, from a synchronous thread. Close it: a watch left half read holds its
    connection (and closing never returns that connection for reuse: its framing is unknown)."""

    def __init__(self, loop: EventLoop, response: aiohttp.ClientResponse) -> None:
        self._loop, self._response = loop, response
        self.status = response.status
        self._feed: _Feed | None = None

    def head(self, limit: int) -> bytes:
        """Up to ``limit`` bytes of the body (a refusal's Status), then the rest is left unread."""
        return self._loop.run(_guarded(_head(self._response.content, limit)))

    def lines(self) -> Iterator[bytes]:
        """The body's lines, as they arrive, until the server ends it; ConnectionError as ``Http.send``
        (a line over ``MAX_EVENT`` bytes included)."""
        self._feed = feed = _Feed(self._loop)
        self._loop.soon(feed.pump(self._response.content))
        parts: list[bytes] = []
        size = 0
        while data := feed.take():
            start = 0
            while (end := data.find(b"\n", start)) >= 0:
                parts.append(data[start : end + 1])
                yield b"".join(parts)
                parts, size, start = [], 0, end + 1
            if start < len(data):
                parts.append(data[start:])
                size += len(data) - start
                if size > MAX_EVENT:
                    raise ConnectionError(f"a watch event over {MAX_EVENT} bytes")
        if parts:
            yield b"".join(parts)

    @property
    def buffered(self) -> int:
        """Bytes read from the connection that the reading thread has not taken yet."""
        return self._feed.queued if self._feed is not None else 0

    def close(self) -> None:
        self._loop.soon(_close_stream(self._response, self._feed))


class _Feed:
    """A watch's body handed from the event loop to the thread reading it, pushed as it arrives.

    Pulling each piece with ``EventLoop.run`` cost a coroutine, a task, a future and a wake-up of the loop's
    thread per read: 440 us of client CPU a watch event against 190 us on the stack aiohttp replaced
    (bench/watch_events.py). Here one task on the loop reads and puts every piece into a queue the reader
    takes from. A reader slower than the server (a flood of events) stops the task at ``FEED_BOUND`` bytes
    queued, so a watch never holds more than that plus one read: the rest waits in the socket, and the
    server's own watch window (410 Gone, then a list) takes over."""

    def __init__(self, loop: EventLoop) -> None:
        self._loop = loop
        self._queue: queue.SimpleQueue[bytes | BaseException] = queue.SimpleQueue()
        self._lock = threading.Lock()  # queued and paused, written from both threads
        self.queued, self._paused = 0, False
        self._room = asyncio.Event()  # the loop's side: set when the reader has taken enough
        self.task: asyncio.Task[None] | None = None

    async def pump(self, content: aiohttp.StreamReader) -> None:
        """On the loop: every piece of the body into the queue, then b"" (its end) or the failure."""
        self.task = asyncio.current_task()
        try:
            while data := await content.readany():
                with self._lock:
                    self.queued += len(data)
                    self._paused = full = self.queued > FEED_BOUND
                if full:
                    self._room.clear()  # before the reader can see the piece: its set() comes after this
                self._queue.put(data)
                if full:
                    await self._room.wait()
            self._queue.put(b"")
        except (aiohttp.ClientError, HttpProcessingError, OSError) as error:  # as _guarded
            failure = ConnectionError(str(error) or type(error).__name__)
            failure.__cause__ = error
            self._queue.put(failure)
        except Exception as error:  # anything else reaches the reader, never dies unseen on the loop
            self._queue.put(error)

    def take(self) -> bytes:
        """The next piece (b"" at the end of the body); its failure, raised here; ClusterError if the loop
        is dead."""
        while True:
            try:
                item = self._queue.get(timeout=LIVENESS)
                break
            except queue.Empty:
                if not self._loop.alive:
                    raise ClusterError("the HTTP event loop stopped while a watch was read; restart "
                                       "gitopsguard") from None  # fmt: skip
        if isinstance(item, BaseException):
            raise item
        with self._lock:
            self.queued -= len(item)
            resume = self._paused and self.queued <= FEED_BOUND
            self._paused = self._paused and not resume
        if resume:
            self._loop.loop.call_soon_threadsafe(self._room.set)
        return item


def _check(method: str, target: str) -> None:
    """ClusterError unless ``target`` goes out as written. yarl drops an empty query ("configmaps/?" went out as
    "configmaps/", the collection): refused too."""
    if (not _TARGET.fullmatch(target) or _DOT_SEGMENT.search(target.partition("?")[0] + "?")
            or target.endswith("?")):  # fmt: skip
        raise ClusterError(f"{method} {target[:200]!r}: not sent: a request target is encoded ASCII without "
                           "spaces, control characters, '#', '.' and '..' segments or an empty query; check "
                           "the object's name and namespace")  # fmt: skip


def tls_context(configuration: Configuration) -> ssl.SSLContext:
    """The kubeconfig's TLS settings; ClusterError naming what could not be read."""
    try:
        context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
        data = getattr(configuration, "ca_cert_data", None)
        if data:
            context.load_verify_locations(cadata=data.decode() if isinstance(data, bytes) else data)
        if not configuration.verify_ssl:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif configuration.assert_hostname is False:
            context.check_hostname = False
        if configuration.cert_file:
            context.load_cert_chain(configuration.cert_file, configuration.key_file)
    except (OSError, ssl.SSLError, ValueError) as error:
        raise ClusterError(f"{configuration.host}: the kubeconfig's TLS settings cannot be used ({error}); check "
                           "its certificate-authority, client-certificate and client-key") from error  # fmt: skip
    return context


def _request_options(configuration: Configuration, base: str) -> dict[str, Any]:
    """Per-request options of aiohttp for the kubeconfig's TLS server name and proxy."""
    options: dict[str, Any] = {}
    if getattr(configuration, "tls_server_name", None):
        options["server_hostname"] = configuration.tls_server_name
    proxy = configuration.proxy
    if proxy and not should_bypass_proxies(base, configuration.no_proxy or ""):
        own_tls = getattr(configuration, "proxy_ssl_context", None) is not None
        if urlsplit(proxy).scheme.lower().startswith("socks") or own_tls:
            scheme = urlsplit(proxy).scheme  # not the whole URL: it may carry the proxy's password
            raise ClusterError(f"{base}: a {scheme} proxy with these settings is not supported (SOCKS, or a TLS "
                               "context of its own): use an HTTP(S) proxy, or none")  # fmt: skip
        options["proxy"] = proxy
        if configuration.proxy_headers:
            options["proxy_headers"] = dict(configuration.proxy_headers)
    return options


async def _sessions(tls: ssl.SSLContext | None, connections: int) -> tuple[aiohttp.ClientSession, ...]:
    """Sessions belong to the loop they are made on: made there."""

    def session(limit: int) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(ssl=tls or True, limit=limit, keepalive_timeout=IDLE)
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(), headers=IDENTITY,
                                     trust_env=False)  # fmt: skip

    # watches: no limit of their own; each holds one waiting thread, so the threads watching bound them
    return session(connections), session(0)


async def _guarded(work: Awaitable[T]) -> T:
    """The library's transport failures as the seam's ConnectionError (chained)."""
    try:
        return await work
    except (aiohttp.ClientError, HttpProcessingError, OSError) as error:  # OSError: TimeoutError, ssl.SSLError
        raise ConnectionError(str(error) or type(error).__name__) from error


async def _head(content: aiohttp.StreamReader, limit: int) -> bytes:
    data = b""
    while len(data) < limit and (chunk := await content.read(limit - len(data))):
        data += chunk
    return data


async def _close_stream(response: aiohttp.ClientResponse, feed: _Feed | None) -> None:
    if feed is not None and feed.task is not None:
        feed.task.cancel()
    response.close()


def _close(loop: EventLoop, *sessions: aiohttp.ClientSession) -> None:
    """An Http no longer used: its sessions' connections closed (from whichever thread collects it)."""

    async def close() -> None:
        for session in sessions:
            await session.close()

    loop.soon(close())
