"""Who wrote an object, from the API server's own audit log: the user behind a drift.

``managedFields`` names the field manager (``kubectl-edit``, ``kubectl-patch``) but never the person. The
API server's audit log does: each write, at Metadata level, records the user, the verb, the object and
the client. ``gitopsguard run --audit-log FILE`` follows that file (JSON lines, ``audit.k8s.io/v1``
Events; the dev cluster writes one) and keeps the last writer of each object in memory, bounded.
Our own writes (user agent ``gitopsguard/...``), dry runs, failures and status updates are not writers.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ObjectRef = tuple[str, str, str, str]  # apiGroup, resource (plural), namespace, name
WRITES = frozenset(("create", "update", "patch", "delete"))
OUR_AGENT = "gitopsguard/"


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
    """The object and its writer, when this audit line records a completed write by someone else."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("stage") != "ResponseComplete" or event.get("verb") not in WRITES:
        return None
    ref, agent = event.get("objectRef") or {}, str(event.get("userAgent") or "")
    code = int((event.get("responseStatus") or {}).get("code") or 0)
    if agent.startswith(OUR_AGENT) or "dryRun=" in str(event.get("requestURI")) or not 200 <= code < 300:
        return None
    if ref.get("subresource") == "status" or not ref.get("name"):
        return None
    key = (str(ref.get("apiGroup") or ""), str(ref.get("resource")), str(ref.get("namespace") or ""), str(ref["name"]))
    user = str((event.get("user") or {}).get("username") or "?")
    return key, Writer(user, str(event["verb"]), str(event.get("stageTimestamp") or ""), agent)


class AuditTrail:
    def __init__(self, path: Path, keep: int = 20_000) -> None:
        self.path, self._keep = path, keep
        self._writers: OrderedDict[ObjectRef, Writer] = OrderedDict()
        self._lock = threading.Lock()

    def feed(self, line: str) -> None:
        parsed = parse(line)
        if parsed is None:
            return
        with self._lock:
            self._writers[parsed[0]] = parsed[1]
            self._writers.move_to_end(parsed[0])
            while len(self._writers) > self._keep:
                self._writers.popitem(last=False)

    def writer(self, ref: ObjectRef, *, wait: float = 0.0) -> Writer | None:
        """The last writer of this object seen so far, waiting up to ``wait`` seconds for its line."""
        deadline = time.monotonic() + wait
        while True:
            with self._lock:
                found = self._writers.get(ref)
            if found is not None or time.monotonic() >= deadline:
                return found
            time.sleep(0.05)

    def follow(self, stop: threading.Event) -> threading.Thread:
        """Read new lines as the API server writes them, across rotations, until ``stop`` is set."""
        thread = threading.Thread(target=self._follow, args=(stop,), name="audit-trail", daemon=True)
        thread.start()
        return thread

    def _follow(self, stop: threading.Event) -> None:
        handle, identity = _open(self.path, at_end=True)  # writes before we started are not this run's business
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
