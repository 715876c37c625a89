"""A hash-chained JSON-lines log.

Each record carries ``seq`` (1, 2, ...), the ``prev`` hash of the record before it (64 zeros for the
first) and its own ``hash``: SHA-256 over ``prev`` and the record's canonical JSON without ``hash``.
Editing a record breaks its hash; removing or reordering records breaks ``seq`` and ``prev``. Cutting
records off the end leaves a valid shorter chain, so ``verify`` also takes the head (seq and hash) that a
reader saved elsewhere, and reports when the log no longer reaches it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gitopsguard.errors import GitOpsGuardError
from gitopsguard.model import Change

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    time: str
    event: str  # what happened: an object's action, "reconcile-failed", "brake-engaged", ...
    unit: str
    revision: str
    subject: str  # the object or thing it happened to
    detail: str
    prev: str
    hash: str

    def body(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "hash"}


@dataclass(frozen=True)
class Verification:
    records: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def _digest(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{body['prev']}\n{canonical}".encode()).hexdigest()


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, entries: Iterable[tuple[str, str, str, str, str]]) -> list[AuditRecord]:
        """Append (event, unit, revision, subject, detail) entries under an exclusive lock; fsynced."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            last = _last_record(handle.read().splitlines())
            seq, prev = (last.seq, last.hash) if last else (0, GENESIS)
            written = []
            for event, unit, revision, subject, detail in entries:
                seq += 1
                now = datetime.now(UTC).isoformat(timespec="milliseconds")
                draft = AuditRecord(seq, now, event, unit, revision, subject, detail, prev, hash="")
                record = replace(draft, hash=_digest(draft.body()))
                handle.write(json.dumps(record.__dict__, ensure_ascii=False) + "\n")
                written.append(record)
                prev = record.hash
            handle.flush()
            os.fsync(handle.fileno())
        return written

    def records(self) -> Iterator[AuditRecord]:
        if not self.path.exists():
            return
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            yield _parse(line, f"{self.path}:{number}")

    def verify(self, expected_head: tuple[int, str] | None = None) -> Verification:
        problems: list[str] = []
        seq, prev, count = 0, GENESIS, 0
        hashes: dict[int, str] = {}
        for number, line in enumerate(self._lines(), start=1):
            where = f"{self.path}:{number}"
            try:
                record = _parse(line, where)
            except GitOpsGuardError as error:
                problems.append(str(error))
                continue
            count += 1
            if record.seq != seq + 1:
                problems.append(f"{where}: record {record.seq} follows record {seq} (removed or reordered records)")
            if record.prev != prev:
                problems.append(f"{where}: record {record.seq} does not chain to the record before it")
            if _digest(record.body()) != record.hash:
                problems.append(f"{where}: record {record.seq} was edited (its hash does not match its content)")
            seq, prev = record.seq, record.hash
            hashes[seq] = record.hash
        if expected_head and expected_head[0] > seq:
            problems.append(f"{self.path}: ends at record {seq}, but record {expected_head[0]} was written (truncated)")
        elif expected_head and hashes.get(expected_head[0]) != expected_head[1]:
            problems.append(f"{self.path}: record {expected_head[0]} is not the one written then (rewritten log)")
        return Verification(count, tuple(problems))

    def _lines(self) -> list[str]:
        return self.path.read_text(encoding="utf-8").splitlines() if self.path.exists() else []


def _parse(line: str, where: str) -> AuditRecord:
    try:
        return AuditRecord(**json.loads(line))
    except (ValueError, TypeError) as error:
        raise GitOpsGuardError(f"{where}: not an audit record ({error})") from error


def _last_record(lines: list[str]) -> AuditRecord | None:
    return _parse(lines[-1], "audit log, last line") if lines else None


def records_for(unit: str, revision: str, changes: Iterable[Change]) -> list[tuple[str, str, str, str, str]]:
    """Audit entries for a reconcile's changes; objects left unchanged are not recorded."""
    return [(c.action.value, unit, revision, str(c.key), c.detail) for c in changes if c.action.value != "unchanged"]
