"""The audit log every replica extends: records chained onto the anchor in the cluster (``anchor.py``), then
written to a file (a PersistentVolumeClaim), to standard output as JSON lines (the platform's log pipeline),
or both.

An append is: under the file's lock, build the records onto the anchored head and move the anchor (a write
conditioned on its resourceVersion, built again on a conflict), then write the records out. Threads of one
process commit together: whoever finds no commit under way takes every entry queued so far, so at high rates
(admission on several replicas) one anchor write carries many records.

A crash between anchoring and writing leaves that append's records in the anchor alone. The next append by
another process writes them out before its own (to its file unless the file already reaches them, and to
standard output), so no record is lost from the copies; ``audit verify`` reads copies as a set of records and
takes duplicates as one.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from gitopsguard.audit.anchor import GENESIS_HEAD, Anchor, AnchorStore, Head, anchor_error
from gitopsguard.audit.log import AuditLog, _record
from gitopsguard.audit.record import AuditRecord, encode
from gitopsguard.errors import ClusterError, GitOpsGuardError

Entry = tuple[str, str, str, str, str]
MAX_BATCH_BYTES = 512 * 1024  # text of the entries anchored by one write; a larger append takes several
ANCHORED = "audit-anchored"
_TRIES = 4  # anchor writes tried through transient API failures before an append fails


def stdout_sink(lines: bytes) -> None:
    """Records to standard output, whole lines in one write, flushed: what the log pipeline keeps."""
    sys.stdout.write(lines.decode("ascii"))
    sys.stdout.flush()


def writer_id() -> str:
    """This process among the replicas: the Pod's host name, the pid, and a random part for restarts."""
    return f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(4)}"


@dataclass
class _Ticket:
    entries: list[Entry]
    written: list[AuditRecord] = field(default_factory=list)
    error: GitOpsGuardError | None = None
    done: bool = False


class AnchoredLog(AuditLog):
    """An audit log whose chain is anchored in the cluster. ``path`` None: no file (standard output alone)."""

    def __init__(
        self, path: Path | None, anchor: AnchorStore, *, echo: Callable[[bytes], None] | None = None,
        writer: str | None = None, count: Callable[[int], None] = lambda _: None,
    ) -> None:  # fmt: skip
        super().__init__(path or Path(os.devnull))
        self.file, self.anchor, self._echo, self._count = path, anchor, echo, count
        self.writer = writer or writer_id()
        self._turn = threading.Condition()
        self._queued: list[_Ticket] = []
        self._busy = False

    @property
    def shown(self) -> str:
        return str(self.file) if self.file is not None else "standard output"

    def append(self, entries: Iterable[Entry]) -> list[AuditRecord]:
        """Anchor and write the entries (with any queued by other threads meanwhile); the records written."""
        ticket = _Ticket(list(entries))
        if not ticket.entries:
            return []
        with self._turn:
            self._queued.append(ticket)
            while self._busy and not ticket.done:
                self._turn.wait()
            if not ticket.done:
                self._busy, tickets, self._queued = True, self._queued, []
        if not ticket.done:
            try:
                self._commit(tickets)
            finally:
                with self._turn:
                    failed = GitOpsGuardError(f"{self.shown}: the audit append under way failed unexpectedly")
                    for other in tickets:  # a commit that ended in an unexpected error still answers every caller
                        if not other.done:
                            other.error, other.done = failed, True
                    self._busy = False
                    self._turn.notify_all()
        if ticket.error is not None:
            raise ticket.error
        return ticket.written

    def _commit(self, tickets: list[_Ticket]) -> None:
        for group in _groups(tickets):
            try:
                records = self._anchor_and_write([entry for ticket in group for entry in ticket.entries])
            except GitOpsGuardError as error:
                records = []
                for ticket in group:
                    ticket.error = error
            for ticket in group:
                ticket.written, records = records[: len(ticket.entries)], records[len(ticket.entries) :]
                ticket.done = True

    def _anchor_and_write(self, entries: list[Entry]) -> list[AuditRecord]:
        with self._open() as handle:
            prefix, cut, reached = self._file_state(handle)
            before, after = self._advance([*cut, *entries], reached)
            carried = self._carried(before, reached)
            out = b"".join(encode(record) for record in (*carried, *after.batch))
            try:
                if handle is not None:
                    handle.write(prefix + out)
                    handle.flush()
                    os.fsync(handle.fileno())
                if self._echo is not None:
                    self._echo(out)
            except (OSError, ValueError) as error:
                # Anchored but maybe not written: as another writer, the next append carries these records out.
                self.writer = writer_id()
                raise GitOpsGuardError(f"{self.shown}: cannot write the audit records anchored as {after.head.text()} "
                                       f"({error}); the next append writes them out. Free space or fix the "
                                       "volume, or standard output") from error  # fmt: skip
        self._count(len(after.batch))
        return list(after.batch[len(after.batch) - len(entries) :])  # the cut-off and seed records come first

    def _open(self) -> AbstractContextManager[BinaryIO | None]:
        if self.file is None:
            return nullcontext()
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            handle = self.file.open("a+b")
            fcntl.flock(handle, fcntl.LOCK_EX)  # replicas sharing one file (a ReadWriteMany volume) take turns
        except OSError as error:
            raise GitOpsGuardError(f"{self.file}: cannot open the audit log ({error.strerror or error}); free "
                                   "space or fix the permissions. Nothing was recorded") from error  # fmt: skip
        return handle

    def _file_state(self, handle: BinaryIO | None) -> tuple[bytes, list[Entry], Head | None]:
        """What the file needs before the records (an end of line, an ``audit-cut-off`` entry for a line an
        append left cut off), and the last record it holds (None without a file)."""
        if handle is None:
            return b"", [], None
        prefix, cut, seq, last = self._start(handle)
        if cut:
            record = cut[0]
            entry: Entry = (record.event, record.unit, record.revision, record.subject, record.detail)
            return prefix, [entry], Head(seq - 1, record.prev)
        return prefix, [], Head(seq, last)

    def _advance(self, entries: list[Entry], reached: Head | None) -> tuple[Anchor | None, Anchor]:
        def build(current: Anchor | None) -> tuple[AuditRecord, ...]:
            start = current.head if current is not None else (reached or GENESIS_HEAD)
            seeded = [] if current is not None else [_seed_entry(reached)]
            return _chain(start, [*seeded, *entries])

        for attempt in range(_TRIES):
            try:
                return self.anchor.advance(self.writer, build)
            except ClusterError as error:
                if attempt == _TRIES - 1 or "cannot be read" in str(error):
                    raise anchor_error(self.anchor.where, error) from error
                time.sleep(0.25 * 2**attempt)
        raise AssertionError("unreachable")

    def _carried(self, before: Anchor | None, reached: Head | None) -> tuple[AuditRecord, ...]:
        """The records of the append before this one when another process anchored them: they may never have
        been written out if it stopped right after anchoring. Not when this file already holds them."""
        if before is None or before.writer == self.writer:
            return ()
        if reached is not None and reached.seq >= before.head.seq:
            return ()
        return tuple(r for r in before.batch if reached is None or r.seq > reached.seq)


def _seed_entry(reached: Head | None) -> Entry:
    origin = f"the log file's record {reached.seq}" if reached and reached.seq else "the start of a new chain"
    return (ANCHORED, "audit", "", "audit-log/anchor", f"the anchor was created here, continuing {origin}")


def _chain(start: Head, entries: list[Entry]) -> tuple[AuditRecord, ...]:
    records: list[AuditRecord] = []
    seq, prev = start.seq, start.hash
    for entry in entries:
        records.append(_record(seq + 1, prev, *entry))
        seq, prev = records[-1].seq, records[-1].hash
    return tuple(records)


def _groups(tickets: list[_Ticket]) -> list[list[_Ticket]]:
    """Tickets in groups of at most MAX_BATCH_BYTES of text (a larger ticket is a group of its own)."""
    groups: list[list[_Ticket]] = [[]]
    size = 0
    for ticket in tickets:
        weight = sum(len(field) for entry in ticket.entries for field in entry)
        if groups[-1] and size + weight > MAX_BATCH_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(ticket)
        size += weight
    return groups


def open_log(path: Path, *, anchor: AnchorStore | None, stdout: bool, count: Callable[[int], None]) -> AuditLog:
    """The audit log the operator chose: a file (``-``: none), standard output, the anchor in the cluster."""
    check_choice(path, stdout=stdout, anchored=anchor is not None)
    file = None if str(path) == "-" else path
    if anchor is None:
        return _CountedLog(path, count)
    return AnchoredLog(file, anchor, echo=stdout_sink if stdout or file is None else None, count=count)


def check_choice(path: Path | None, *, stdout: bool, anchored: bool) -> None:
    """Refuse, before anything is done, records on standard output without the anchor: each process would
    start a chain of its own there."""
    if not anchored and (stdout or str(path) == "-"):
        raise GitOpsGuardError(
            f"--audit-log {path or '(default)'}{' --audit-stdout' if stdout else ''}: records on standard output "
            "form one chain with the other replicas' only through the anchor in the cluster; add --audit-anchor"
        )


class _CountedLog(AuditLog):
    def __init__(self, path: Path, count: Callable[[int], None]) -> None:
        super().__init__(path)
        self._count = count

    def append(self, entries: Iterable[Entry]) -> list[AuditRecord]:
        written = super().append(entries)
        self._count(len(written))
        return written
