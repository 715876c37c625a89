"""The audit log every replica extends: records chained onto the anchor in the cluster (``anchor.py``), then
written to a file (a PersistentVolumeClaim), to standard output as JSON lines (the platform's log pipeline),
or both.

An append is: under the file's lock, build the records onto the anchored head and move the anchor (a write
conditioned on its resourceVersion, built again on a conflict), then write the records out. Threads of one
process commit together: whoever finds no commit under way takes every entry queued so far, so at high rates
(admission on several replicas) one anchor write carries many records.

With the anchor on, the anchor is the truth: the file is written after it, and a line in the file that is not
a record (cut off by a crash, or written outside gitopsguard) is set aside with a record naming it, never a
reason to stop recording.

The anchor's batch keeps every record not yet known written out: a writer lets records go only after it wrote
out every one (to its file and standard output). So a crash between anchoring and writing, or any number of
failed write-outs in a row, loses nothing: the next append (by any process) writes them out before its own.
Past MAX_BACKLOG_BYTES of such records the append first writes them out, and if it cannot, refuses new records
with a message rather than drop any. ``audit verify`` reads copies as a set of records and takes duplicates as
one.

Each anchor write is an attempt with its own id, remembered in the anchor: when a write's answer is lost (a
reset connection, a timeout) the next attempt reads the anchor, finds the earlier attempt applied, and takes it
as done instead of anchoring the same entries again under new numbers.
"""

from __future__ import annotations

import fcntl
import hashlib
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
from gitopsguard.audit.lines import count_lines, read_tail
from gitopsguard.audit.log import CUT_OFF, AuditLog, _record
from gitopsguard.audit.record import AuditRecord, decode, encode
from gitopsguard.errors import ClusterError, GitOpsGuardError

Entry = tuple[str, str, str, str, str]
MAX_BATCH_BYTES = 512 * 1024  # text of the entries anchored by one write; a larger append takes several
ANCHORED = "audit-anchored"
SET_ASIDE = "audit-set-aside"  # a complete line in the file that is not a record, recorded and passed over
MAX_BACKLOG_BYTES = 4 * 1024 * 1024  # records anchored, not yet written out: past this, new ones are refused
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
        writer: str | None = None, count: Callable[[int], None] = lambda _: None, backlog: int = MAX_BACKLOG_BYTES,
    ) -> None:  # fmt: skip
        super().__init__(path or Path(os.devnull))
        self.file, self.anchor, self._echo, self._count = path, anchor, echo, count
        self.writer = writer or writer_id()
        self._turn = threading.Condition()
        self._queued: list[_Ticket] = []
        self._busy = False
        self._confirmed = 0  # every record up to this seq is written out (by this process or before it)
        self._backlog = backlog

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
            prefix, aside, reached = self._file_state(handle)
            try:
                done = self._advance([*aside, *entries], reached)
            except _Backlog as backlog:  # write the backlog out first: past the cap nothing new is anchored
                self._write_backlog(handle, prefix, backlog, reached)
                prefix, _, reached = self._file_state(handle)  # the lines to set aside are the ones found first
                done = self._advance([*aside, *entries], reached, refuse=True)
            try:
                self._write_out(handle, prefix, done, reached)
            except (OSError, ValueError) as error:
                # Anchored, not written: the records stay in the anchor's batch and the next append writes them
                raise GitOpsGuardError(f"{self.shown}: cannot write the audit records anchored as "
                                       f"{done.anchor.head.text()} ({error}); the next append writes them out. "
                                       "Free space or fix the volume, or standard output") from error  # fmt: skip
        self._count(len(done.ours))
        return list(done.ours[max(0, len(done.ours) - len(entries)) :])  # set-aside and seed records come first

    def _write_out(self, handle: BinaryIO | None, prefix: bytes, done: _Anchored, reached: Head | None) -> None:
        """The anchor's batch to standard output, and to the file what it lacks of it; then this process knows
        every record up to the head written out, and the next batch it anchors lets them go."""
        ours = {record.seq for record in done.ours}
        batch = done.anchor.batch
        if handle is not None:
            reached = reached if _on_chain(reached, done.anchor) else None  # a forged last record proves nothing
            lacking = [r for r in batch if r.seq in ours or reached is None or r.seq > reached.seq]
            handle.write(prefix + b"".join(encode(record) for record in lacking))
            handle.flush()
            os.fsync(handle.fileno())
        if self._echo is not None:
            self._echo(b"".join(encode(record) for record in batch))
        self._confirmed = max(self._confirmed, done.anchor.head.seq)

    def _write_backlog(self, handle: BinaryIO | None, prefix: bytes, backlog: _Backlog, reached: Head | None) -> None:
        try:
            self._write_out(handle, prefix, _Anchored(backlog.anchor, ()), reached)
        except (OSError, ValueError) as error:
            raise backlog.refusal(self.anchor.where, self._backlog, error) from error

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
        """What the file needs before the records (an end of line), the entries that set aside its lines that
        are not records (a last line cut off by a crash, a complete line written outside gitopsguard), and the
        last record it holds (None without a file). With the anchor on, no line in the file stops recording."""
        if handle is None:
            return b"", [], None
        tail, aside = read_tail(handle), []
        reached = GENESIS_HEAD
        if tail.line is not None:
            last = _decoded(tail.line)
            if last is None:
                aside.append(_set_aside(SET_ASIDE, count_lines(handle), tail.line, _PLANTED))
                last = _last_record(handle)
            reached = Head(last.seq, last.hash) if last is not None else GENESIS_HEAD
        if not tail.fragment:
            return b"", aside, reached
        whole = _decoded(tail.fragment)
        if whole is not None:  # a whole record that only lacks its end of line: the file reaches it
            return b"\n", aside, Head(whole.seq, whole.hash)
        aside.append(_set_aside(CUT_OFF, count_lines(handle) + 1, tail.fragment, _CUT))
        return b"\n", aside, reached

    def _advance(self, entries: list[Entry], reached: Head | None, *, refuse: bool = False) -> _Anchored:
        """Anchor the entries, each attempt under a new id; an attempt whose answer was lost but that the
        anchor shows applied is taken as done, so no entry is anchored twice."""
        tried: dict[str, int] = {}  # attempt id: how many records it made

        def build(current: Anchor | None) -> tuple[AuditRecord, ...]:
            landed = current.landed(tried) if current is not None else None
            if current is not None and landed is not None:
                attempt, seq = landed
                raise _Landed(
                    _Anchored(current, tuple(r for r in current.batch if seq - tried[attempt] < r.seq <= seq))
                )
            kept = self._kept(current, refuse=refuse)
            start = current.head if current is not None else (reached or GENESIS_HEAD)
            seeded = [] if current is not None else [_seed_entry(reached)]
            made = _chain(start, [*seeded, *entries])
            tried[attempt_id] = len(made)
            return (*kept, *made)

        for attempt in range(_TRIES):
            attempt_id = secrets.token_hex(8)
            tried[attempt_id] = 0
            try:
                _, after = self.anchor.advance(self.writer, build, attempt_id)
                return _Anchored(after, after.batch[len(after.batch) - tried[attempt_id] :])
            except _Landed as landed:
                return landed.done
            except ClusterError as error:  # unapplied, or applied with the answer lost: the next build tells
                if attempt == _TRIES - 1 or "cannot be read" in str(error):
                    raise anchor_error(self.anchor.where, error) from error
                time.sleep(0.25 * 2**attempt)
        raise AssertionError("unreachable")

    def _kept(self, current: Anchor | None, *, refuse: bool) -> tuple[AuditRecord, ...]:
        """The records of the anchor's batch this process has not written out: they stay in the batch until
        a write-out succeeds. Past the backlog cap nothing new is anchored (fail closed, never drop)."""
        if current is None:
            return ()
        kept = tuple(record for record in current.batch if record.seq > self._confirmed)
        if sum(len(encode(record)) for record in kept) > self._backlog:
            raise (
                _Backlog(current, kept)
                if not refuse
                else _Backlog(current, kept).refusal(self.anchor.where, self._backlog, None)
            )
        return kept


@dataclass(frozen=True)
class _Anchored:
    anchor: Anchor  # the anchor holding this append's records
    ours: tuple[AuditRecord, ...]  # this append's records (set-aside and seed ones first), as far as it holds them


class _Landed(Exception):  # noqa: N818  (internal signal: an attempt whose answer was lost was applied)
    def __init__(self, done: _Anchored) -> None:
        self.done = done


class _Backlog(Exception):  # noqa: N818  (internal signal: the batch not written out is past the cap)
    def __init__(self, anchor: Anchor, kept: tuple[AuditRecord, ...]) -> None:
        self.anchor, self.kept = anchor, kept

    def refusal(self, where: str, cap: int, error: Exception | None) -> GitOpsGuardError:
        cause = f"writing them failed ({error})" if error is not None else "they keep arriving"
        return GitOpsGuardError(
            f"{where}: {len(self.kept)} audit records anchored up to {self.anchor.head.text()} are not written out "
            f"yet, past the {cap} bytes the anchor keeps, and {cause}; nothing new was recorded (no record is "
            "dropped). Free space or fix the volume or standard output: the next append writes them out and "
            "recording resumes"
        )


_PLANTED = "not a record (written outside gitopsguard); the line is kept, set aside, the chain goes on from the anchor"
_CUT = "an append was cut off here (a crash or a full disk); the line is kept, set aside"


def _set_aside(event: str, number: int, line: bytes, why: str) -> Entry:
    fingerprint = f"sha256:{hashlib.sha256(line).hexdigest()} {len(line)} bytes"
    return (event, "audit", "", f"audit-log/line-{number}", f"{fingerprint}: {why}")


def _decoded(line: bytes) -> AuditRecord | None:
    try:
        return decode(line, "audit line")
    except GitOpsGuardError:
        return None


def _last_record(handle: BinaryIO) -> AuditRecord | None:
    """The file's last line that is a record: read whole, only when its last line is not one (tampering)."""
    handle.seek(0)
    last = None
    for raw in handle:
        last = _decoded(raw.removesuffix(b"\n")) or last
    return last


def _on_chain(reached: Head | None, anchor: Anchor) -> bool:
    """Whether the file's last record can be one of the anchored chain: not past the head, and the batch's
    record of that number when the batch holds it."""
    if reached is None or reached.seq > anchor.head.seq:
        return False
    return all(record.hash == reached.hash for record in anchor.batch if record.seq == reached.seq)


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
