"""Who wrote an object, from the API server's own audit log: the user behind a drift.

``managedFields`` names the field manager (``kubectl-edit``, ``kubectl-patch``) but never the person. The
API server's audit log does: each write, at Metadata level, records the user, the verb, the object and
the client. ``gitopsguard run --audit-log FILE`` follows that file (JSON lines, ``audit.k8s.io/v1``
Events; the dev cluster writes one) and keeps the last writers of each object in memory, bounded.
Dry runs, failures and status updates are not writers.

Our own writes are told apart by what a client cannot forge: the user the API server authenticated. A
User-Agent is a claim anyone can make (a tenant sending ``gitopsguard/x`` was skipped, and the drift put
on whoever wrote before). The controller learns its own user name once, from the audit line of a request
carrying a random nonce (``learn_identity``; Kubernetes 1.20 has no "who am I" API). Until then no writer
is named: better none than the wrong one. A write counts as ours only when both the authenticated user is
ours and its User-Agent says gitopsguard, so a person sharing the controller's account is still named.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import ForbiddenError, NotFoundError

ObjectRef = tuple[str, str, str, str]  # apiGroup, resource (plural), namespace, name
WRITES = frozenset(("create", "update", "patch", "delete"))
OUR_AGENT = "gitopsguard/"
PROBE_PREFIX = "gitopsguard-whoami-"
DRY_RUN = {"dryRun": "All"}
HISTORY = 4  # writers kept per object: ours (the repair) lands right after the drift it repairs


@dataclass(frozen=True)
class Writer:
    user: str
    verb: str
    time: str
    agent: str

    def __str__(self) -> str:
        client = self.agent.split(" ")[0].split("/")[0] or "an unknown client"
        return f"user {self.user} ({self.verb} with {client} at {self.time})"


def parse(line: str) -> tuple[ObjectRef, Writer] | None:
    """The object and its writer, when this audit line records a completed write (ours included: the trail
    tells ours apart by the authenticated user). Anything odd in the line skips it, never raises."""
    try:
        event = json.loads(line)
    except ValueError:  # not JSON, or a number too long to convert
        return None
    if not isinstance(event, dict) or event.get("stage") != "ResponseComplete" or str(event.get("verb")) not in WRITES:
        return None
    ref, agent = _dict(event.get("objectRef")), str(event.get("userAgent") or "")
    code = _int(_dict(event.get("responseStatus")).get("code"))
    if "dryRun=" in str(event.get("requestURI")) or not 200 <= code < 300:
        return None
    if ref.get("subresource") == "status" or not ref.get("name"):
        return None
    key = (str(ref.get("apiGroup") or ""), str(ref.get("resource")), str(ref.get("namespace") or ""), str(ref["name"]))
    user = str(_dict(event.get("user")).get("username") or "?")
    return key, Writer(user, str(event["verb"]), str(event.get("stageTimestamp") or ""), agent)


def _dict(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _int(value: object) -> int:
    try:
        return int(value) if isinstance(value, int | str) and len(str(value)) < 10 else 0
    except ValueError:
        return 0


def probe_identity(line: str, probe: str) -> str | None:
    """The authenticated user name in this audit line, when it records our probe request."""
    if probe not in line:  # cheap: almost every line is someone else's
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    ref = event.get("objectRef") if isinstance(event, dict) else None
    if not isinstance(ref, dict) or ref.get("name") != probe:
        return None
    user = str(_dict(event.get("user")).get("username") or "")
    return user or None


class AuditTrail:
    def __init__(self, path: Path, keep: int = 20_000) -> None:
        self.path, self._keep = path, keep
        self._writers: OrderedDict[ObjectRef, tuple[Writer, ...]] = OrderedDict()
        self._lock = threading.Lock()
        self.probe = PROBE_PREFIX + secrets.token_hex(12)  # the name of the object the probe asks about
        self.me: str | None = None  # the user the API server authenticates the controller as, once learned

    def learn_identity(self, raw: RawApi) -> None:
        """Send the probe: a dry-run delete of ``ConfigMap/default/<probe>``, which does not exist; its audit
        line tells us who we are. Answered NotFound, or Forbidden where we may not delete ConfigMaps there, it
        was audited all the same. Raises the ClusterError of a probe that may not have reached the server
        (unreachable, throttled): then nothing is learned, and the caller asks again later."""
        subject = f"ConfigMap/default/{self.probe}"
        with contextlib.suppress(NotFoundError, ForbiddenError):
            raw.call("DELETE", f"/api/v1/namespaces/default/configmaps/{self.probe}", subject, query=DRY_RUN)

    def feed(self, line: str) -> None:
        if self.me is None and (user := probe_identity(line, self.probe)):
            self.me = user
            return
        parsed = parse(line)
        if parsed is None:
            return
        ref, writer = parsed
        with self._lock:
            self._writers[ref] = (*self._writers.get(ref, ())[-(HISTORY - 1) :], writer)
            self._writers.move_to_end(ref)
            while len(self._writers) > self._keep:
                self._writers.popitem(last=False)

    def writer(self, ref: ObjectRef, *, wait: float = 0.0) -> Writer | None:
        """The last writer of this object other than us seen so far, waiting up to ``wait`` seconds for its
        line; None while we do not know who we are (our own repair would be named otherwise)."""
        deadline = time.monotonic() + wait
        while True:
            found = self._latest_other(ref)
            if found is not None or time.monotonic() >= deadline:
                return found
            time.sleep(0.05)

    def _latest_other(self, ref: ObjectRef) -> Writer | None:
        me = self.me
        if me is None:
            return None
        with self._lock:
            writers = self._writers.get(ref, ())
        others = [w for w in writers if not (w.user == me and w.agent.startswith(OUR_AGENT))]
        return others[-1] if others else None

    def follow(self, stop: threading.Event) -> threading.Thread:
        """Read new lines as the API server writes them, across rotations, until ``stop`` is set. The file
        is opened (at its end) before this returns, so a request made afterwards is seen."""
        opened = _open(self.path, at_end=True)  # writes before we started are not this run's business
        thread = threading.Thread(target=self._follow, args=(stop, opened), name="audit-trail", daemon=True)
        thread.start()
        return thread

    def _follow(self, stop: threading.Event, opened: tuple[IO[bytes] | None, tuple[int, int] | None]) -> None:
        handle, identity = opened
        try:
            while not stop.is_set():
                line = handle.readline() if handle else b""
                if line.endswith(b"\n"):
                    self.feed(line.decode("utf-8", errors="replace"))
                    continue
                if handle is not None:
                    handle.seek(-len(line), 1)  # half a line: read it whole later
                if handle is None or _rotated(self.path, identity, handle):
                    if handle is not None:
                        handle.close()
                    handle, identity = _open(self.path, at_end=False)
                stop.wait(0.05)
        finally:
            if handle is not None:
                handle.close()


def _open(path: Path, *, at_end: bool) -> tuple[IO[bytes] | None, tuple[int, int] | None]:
    try:
        handle = path.open("rb")
    except OSError:
        return None, None
    stat = path.stat()
    if at_end:  # writes made before we started are not this run's business
        handle.seek(0, 2)
    return handle, (stat.st_dev, stat.st_ino)


def _rotated(path: Path, identity: tuple[int, int] | None, handle: IO[bytes]) -> bool:
    try:
        stat = path.stat()
    except OSError:
        return False
    return (stat.st_dev, stat.st_ino) != identity or stat.st_size < handle.tell()
