"""Checking copies of the audit log against the anchor: any mix of files (the volume's file, each replica's
standard output as the log pipeline kept it) read as one set of records.

A copy is read as records, whatever surrounds them: a line counts from its first ``{`` after a container
runtime's or ``kubectl logs --timestamps`` prefix (or inside docker's json-file ``log`` field), and lines
that are not records are skipped (standard output holds other lines too). A record counts by its content:
its hash must match its fields, so a log pipeline that re-serialises the JSON changes nothing. The same
record twice is one record; two different records with one number is tampering.

Then the records must form one chain from record 1 (or from ``since``) and reach the anchor: a copy that
ends before the anchored head was cut (or lacks a replica's output), one whose record at the head differs
was rewritten (even with every hash recomputed: the anchored hash is out of the rewriter's reach), and,
against the live anchor, records past its head were never anchored by gitopsguard.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from gitopsguard.audit.anchor import Anchor, Head
from gitopsguard.audit.lines import read_lines
from gitopsguard.audit.log import Verification
from gitopsguard.audit.record import GENESIS, AuditRecord, digest

_FIELDS = ("seq", "time", "event", "unit", "revision", "subject", "detail", "prev", "hash")
# what may stand before a record on its line: `kubectl logs --timestamps`, or a CRI log line (time, stream, tag)
_STAMP = rb"\d{4}-\d\d-\d\dT[0-9:.]+(?:Z|[+-]\d\d:?\d\d)"
_PREFIX = re.compile(rb"(?:" + _STAMP + rb" )?(?:(?:stdout|stderr) F )?")
# a CRI log line: a line printed longer than 16 KiB is split into `P` parts, its last part tagged `F`
_CRI = re.compile(_STAMP + rb" (stdout|stderr) ([FP]) ")
MAX_JOINED = 16 * 1024 * 1024  # a printed line longer than this, joined from its parts, is not read as a record


@dataclass(frozen=True)
class Found:
    record: AuditRecord
    where: str  # file and line


def verify_copies(
    copies: Iterable[Path], *, anchor: Anchor | None = None, saved: Head | None = None, since: int = 1
) -> Verification:
    """Whether the records in ``copies`` form one intact chain reaching the live ``anchor`` (exactly) or a
    ``saved`` head (at least)."""
    problems: list[str] = []
    chain: dict[int, Found] = {}
    for found in _records(copies):
        kept = chain.setdefault(found.record.seq, found)
        if kept.record != found.record:
            problems.append(f"{found.where}: record {found.record.seq} differs from the one at {kept.where} "
                            "(two different records with one number: one was forged)")  # fmt: skip
    problems += _links(chain, since)
    top = max(chain, default=0)
    for head, live in ((anchor.head if anchor else None, True), (saved, False)):
        if head is not None:
            problems += _reaches(chain, top, head, live=live)
    if anchor is not None and top < anchor.head.seq and any(r.seq == top + 1 for r in anchor.batch):
        problems.append(f"the anchor holds records {top + 1}-{anchor.head.seq} itself: if no copy was cut, their "
                        "writer stopped right after anchoring them, and the next append by another replica writes "
                        "them out")  # fmt: skip
    return Verification(len(chain), tuple(problems))


def _records(copies: Iterable[Path]) -> Iterator[Found]:
    for path in copies:
        for number, text in _printed_lines(path):
            record = _record(text)
            if record is not None:
                yield Found(record, f"{path}:{number}")


def _printed_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Each line as it was printed: a CRI log line's ``P`` parts joined (per stream) with the ``F`` part that
    ends them, the runtime's prefix taken off. Parts never ended (the copy stops), or joined past MAX_JOINED,
    yield nothing: the text at a split is never read as a line of its own."""
    parts: dict[bytes, list[bytes] | None] = {}  # None: this stream's line is past MAX_JOINED, dropped
    for number, text, _ in read_lines(path):
        cri = _CRI.match(text)
        if cri is None:
            yield number, text
            continue
        stream, content = cri.group(1), text[cri.end() :]
        kept = parts.pop(stream, [])
        joined = None if kept is None or sum(map(len, kept)) + len(content) > MAX_JOINED else [*kept, content]
        if cri.group(2) == b"P":
            parts[stream] = joined
        elif joined is not None:
            yield number, b"".join(joined)


def _record(text: bytes) -> AuditRecord | None:
    """The record a line holds, whole or after a log prefix; None for any other line. Text before the ``{`` must
    be a prefix the platform adds, so that a record quoted inside another line (a tenant's text in an error
    message) is not read as one."""
    start = text.find(b"{")
    if start < 0 or not _PREFIX.fullmatch(text[:start]):
        return None
    try:
        raw = json.loads(text[start:].decode("utf-8"))
        if isinstance(raw, dict) and isinstance(raw.get("log"), str) and "seq" not in raw:  # docker's json-file
            raw = json.loads(raw["log"])
    except (ValueError, RecursionError):
        return None
    if not isinstance(raw, dict) or set(raw) != set(_FIELDS) or type(raw["seq"]) is not int:
        return None
    if not all(isinstance(raw[name], str) for name in _FIELDS[1:]):
        return None
    return AuditRecord(**{name: raw[name] for name in _FIELDS})


def _links(chain: dict[int, Found], since: int) -> list[str]:
    problems: list[str] = []
    expected, prev = since, (GENESIS if since == 1 else None)
    for seq in sorted(chain):
        found = chain[seq]
        record = found.record
        if seq < since:
            continue
        if seq > expected:
            problems.append(f"records {expected}-{seq - 1} are in none of these copies (removed, or a copy missing)")
        elif prev is not None and record.prev != prev:
            problems.append(f"{found.where}: record {seq} does not chain to record {seq - 1}")
        if digest(record.body()) != record.hash:
            problems.append(f"{found.where}: record {seq} was edited (its hash does not match its content)")
        expected, prev = seq + 1, record.hash
    return problems


def _reaches(chain: dict[int, Found], top: int, head: Head, *, live: bool) -> list[str]:
    which = "the anchor" if live else "the saved anchor"
    if top < head.seq:
        return [f"these copies end at record {top}, but {which} is at record {head.seq} (records {top + 1}-"
                f"{head.seq} were cut off, or a replica's copy is missing)"]  # fmt: skip
    if chain.get(head.seq) is None or chain[head.seq].record.hash != head.hash:
        where = chain[head.seq].where if head.seq in chain else "these copies"
        return [f"{where}: record {head.seq} is not the one {which} holds (the log was rewritten)"]
    if live and top > head.seq:
        return [f"{chain[top].where}: records {head.seq + 1}-{top} are past {which}'s head: gitopsguard never "
                "anchored them (added by hand)"]  # fmt: skip
    return []
