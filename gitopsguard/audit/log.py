"""A hash-chained JSON-lines log.

Each record carries ``seq`` (1, 2, ...), the ``prev`` hash of the record before it (64 zeros for the
first) and its own ``hash``: SHA-256 over ``prev`` and the record's canonical JSON without ``hash``.
Editing a record breaks its hash; removing or reordering records breaks ``seq`` and ``prev``. Cutting
records off the end leaves a valid shorter chain, so ``verify`` also takes the head (seq and hash) that a
reader saved elsewhere, and reports when the log no longer reaches it.

Each record is one ASCII line whatever its fields hold (``record.py``), and lines are split on b"\\n" alone.

A crash (or a full disk) in the middle of an append leaves a last line cut off, without its b"\\n".
``verify`` reports it with its line number and size. The next append does not chain onto it, nor refuse to
go on (the controller must keep recording): it ends that line, keeps its bytes, and first appends an
``audit-cut-off`` record naming the line and the SHA-256 of its bytes, chained onto the last whole record.
``verify`` then takes that line as set aside, and the records after it verify as before. A line that is not
a record anywhere else is reported as such, and an append refuses to chain onto one.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from gitopsguard.audit.lines import count_lines, read_lines, read_tail
from gitopsguard.audit.record import GENESIS, AuditRecord, decode, digest, encode, recordable
from gitopsguard.errors import GitOpsGuardError
from gitopsguard.model import Change

CUT_OFF = "audit-cut-off"


@dataclass(frozen=True)
class Verification:
    records: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class _Line:
    """One line as read: a record, a cut-off line set aside, or a line that is not a record."""

    number: int
    record: AuditRecord | None = None
    problem: str = ""  # why this line is not a record (empty when it is one, or was set aside)
    cut_off: int = -1  # the size in bytes of a last line without its b"\n" that is not a record


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, entries: Iterable[tuple[str, str, str, str, str]]) -> list[AuditRecord]:
        """Append (event, unit, revision, subject, detail) entries under an exclusive lock; fsynced. Any text
        in a field is recorded; only an unreadable file or a last line that is not a record stops it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a+b") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                prefix, written, seq, prev = self._start(handle)
                for event, unit, revision, subject, detail in entries:
                    written.append(_record(seq + 1, prev, event, unit, revision, subject, detail))
                    seq, prev = written[-1].seq, written[-1].hash
                handle.write(prefix + b"".join(encode(record) for record in written))  # one write: all or a tail
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as error:
            raise GitOpsGuardError(
                f"{self.path}: cannot append to the audit log ({error.strerror or error}); free space or fix the "
                "permissions. Nothing was lost from what is already recorded"
            ) from error
        return written

    def records(self) -> Iterator[AuditRecord]:
        """Every record, oldest first; cut-off lines are skipped, any other line that is not a record raises."""
        for line in self._classified():
            if line.problem:
                raise GitOpsGuardError(line.problem)
            if line.record is not None:
                yield line.record

    def verify(self, expected_head: tuple[int, str] | None = None) -> Verification:
        problems: list[str] = []
        seq, prev, count = 0, GENESIS, 0
        hashes: dict[int, str] = {}
        for line in self._classified():
            where = f"{self.path}:{line.number}"
            if line.problem:
                problems.append(line.problem)
            elif line.cut_off >= 0:
                problems.append(_cut_off_problem(where, line.cut_off, seq))
            if line.record is None:
                continue
            record = line.record
            count += 1
            if record.seq != seq + 1:
                problems.append(f"{where}: record {record.seq} follows record {seq} (removed or reordered records)")
            if record.prev != prev:
                problems.append(f"{where}: record {record.seq} does not chain to the record before it")
            if digest(record.body()) != record.hash:
                problems.append(f"{where}: record {record.seq} was edited (its hash does not match its content)")
            seq, prev = record.seq, record.hash
            hashes[seq] = record.hash
        if expected_head and expected_head[0] > seq:
            problems.append(f"{self.path}: ends at record {seq}, but record {expected_head[0]} was written (truncated)")
        elif expected_head and hashes.get(expected_head[0]) != expected_head[1]:
            problems.append(f"{self.path}: record {expected_head[0]} is not the one written then (rewritten log)")
        return Verification(count, tuple(problems))

    def _classified(self) -> Iterator[_Line]:
        """Each line; a line that is not a record counts as set aside when the record after it says so."""
        pending: tuple[int, bytes, str, bool] | None = None  # a line that is not a record, awaiting the next
        for number, text, terminated in read_lines(self.path):
            try:
                record = decode(text, f"{self.path}:{number}")
            except GitOpsGuardError as error:
                if pending is not None:
                    yield _Line(pending[0], problem=pending[2])
                pending = (number, text, str(error), terminated)
                continue
            if pending is not None:
                yield _Line(pending[0]) if _sets_aside(record, pending[0], pending[1]) else _not_a_record(pending)
                pending = None
            yield _Line(number, record)
        if pending is not None:
            yield _not_a_record(pending)

    def _start(self, handle: BinaryIO) -> tuple[bytes, list[AuditRecord], int, str]:
        """What an append writes before its records (an end of line, an ``audit-cut-off`` record) and the seq
        and hash its first record chains onto. A cut-off last line is kept and set aside, never chained onto."""
        tail = read_tail(handle)
        if not tail.fragment:
            return (b"", [], *self._chain_onto(tail.line, handle))
        try:
            whole = decode(tail.fragment, f"{self.path}, last line")
        except GitOpsGuardError:
            number = count_lines(handle) + 1
            seq, prev = self._chain_onto(tail.line, handle)
            fingerprint = f"sha256:{hashlib.sha256(tail.fragment).hexdigest()} {len(tail.fragment)} bytes"
            detail = f"{fingerprint}: an append was cut off here (a crash or a full disk); the line is kept, set aside"
            cut = _record(seq + 1, prev, CUT_OFF, "audit", "", f"audit-log/line-{number}", detail)
            return b"\n", [cut], cut.seq, cut.hash
        return b"\n", [], whole.seq, whole.hash  # a whole record that only lacks its end of line: chain onto it

    def _chain_onto(self, line: bytes | None, handle: BinaryIO) -> tuple[int, str]:
        """The seq and hash of the record on the last whole ``line``, or the genesis of an empty log."""
        if line is None:
            return 0, GENESIS
        try:
            last = decode(line, f"{self.path}:{count_lines(handle)}")
        except GitOpsGuardError as error:
            raise GitOpsGuardError(
                f"{error}. Nothing was appended: the log was changed outside gitopsguard. See what changed with "
                "`gitopsguard audit verify`; to go on, move the file aside (keep it as evidence) and a new log "
                "starts"
            ) from error
        return last.seq, last.hash


def _record(seq: int, prev: str, *fields: object) -> AuditRecord:
    event, unit, revision, subject, detail = (recordable(value) for value in fields)
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    draft = AuditRecord(seq, now, event, unit, revision, subject, detail, prev, hash="")
    return replace(draft, hash=digest(draft.body()))


def _sets_aside(record: AuditRecord, number: int, line: bytes) -> bool:
    """Whether ``record`` is the cut-off record an append wrote for this very line (number and bytes)."""
    fingerprint = f"sha256:{hashlib.sha256(line).hexdigest()} {len(line)} bytes:"
    return (record.event, record.unit, record.subject) == (CUT_OFF, "audit", f"audit-log/line-{number}") and (
        record.detail.startswith(fingerprint)
    )


def _not_a_record(pending: tuple[int, bytes, str, bool]) -> _Line:
    number, text, problem, terminated = pending
    return _Line(number, problem=problem) if terminated else _Line(number, cut_off=len(text))


def _cut_off_problem(where: str, size: int, seq: int) -> str:
    before = f"records 1-{seq} before it are intact" if seq else "there is no record before it"
    return (
        f"{where}: cut off after {size} bytes (no end of line): an append did not finish (a crash or a full "
        f"disk), or the file was cut here; {before}. The next append sets this line aside and records that it did"
    )


def records_for(unit: str, revision: str, changes: Iterable[Change]) -> list[tuple[str, str, str, str, str]]:
    """Audit entries for a reconcile's changes; objects left unchanged are not recorded."""
    return [(c.action.value, unit, revision, str(c.key), c.detail) for c in changes if c.action.value != "unchanged"]
