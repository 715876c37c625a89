"""Fuzzing the audit log: any text in any field round-trips and verifies; any tampering is detected."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.audit import AuditLog
from tests.unit.test_audit_log_text import LINE_BREAKERS, as_read

Entry = tuple[str, str, str, str, str]

# Every code point, surrogates and controls included, with line breakers drawn often.
texts = st.text(st.one_of(st.characters(exclude_categories=()), st.sampled_from("".join(LINE_BREAKERS))))
entries = st.tuples(texts, texts, texts, texts, texts)
batches = st.lists(st.lists(entries, min_size=1, max_size=4), min_size=1, max_size=4)


@contextmanager
def new_log() -> Iterator[AuditLog]:
    with tempfile.TemporaryDirectory() as folder:
        yield AuditLog(Path(folder) / "audit.jsonl")


def filled(log: AuditLog, appends: list[list[Entry]]) -> None:
    for batch in appends:
        log.append(batch)


@given(appends=batches)
@example(appends=[[("policy-finding", "live-scan", "", "Pod/t/p", "capability NET_ADMIN\u2028")]])
@example(appends=[[("\x85", "\x1c\x1d\x1e", "\x0b\x0c", "\u2029", "\ud83d\ude00 \udc80 \ud800")]])
def test_any_text_in_any_field_round_trips_and_every_append_leaves_the_log_intact(appends: list[list[Entry]]) -> None:
    with new_log() as log:
        for batch in appends:
            log.append(batch)
            assert log.verify().ok, log.verify().problems
        read = [(r.event, r.unit, r.revision, r.subject, r.detail) for r in log.records()]
        assert read == [tuple(as_read(text) for text in entry) for batch in appends for entry in batch]
        data = log.path.read_bytes()
        assert data.isascii() and data.count(b"\n") == len(read)


@given(appends=batches, where=st.floats(0, 1, exclude_max=True), new=st.integers(0, 255))
@example(appends=[[("created", "dev", "abc", "ConfigMap/a/b", "")]], where=0.07, new=ord(" "))
def test_a_byte_changed_anywhere_is_detected(appends: list[list[Entry]], where: float, new: int) -> None:
    with new_log() as log:
        filled(log, appends)
        data = bytearray(log.path.read_bytes())
        position = int(where * len(data))
        if data[position] == new:
            new = (new + 1) % 256
        data[position] = new
        log.path.write_bytes(bytes(data))
        assert not log.verify().ok


@given(appends=batches, which=st.floats(0, 1, exclude_max=True))
def test_a_removed_line_is_detected_against_the_saved_head(appends: list[list[Entry]], which: float) -> None:
    with new_log() as log:
        filled(log, appends)
        records = list(log.records())
        lines = log.path.read_bytes().split(b"\n")[:-1]
        del lines[int(which * len(lines))]
        log.path.write_bytes(b"".join(line + b"\n" for line in lines))
        assert not log.verify(expected_head=(records[-1].seq, records[-1].hash)).ok


@given(appends=batches, which=st.floats(0, 1), inserted=st.one_of(st.binary(max_size=300), st.none()))
def test_an_inserted_line_is_detected(appends: list[list[Entry]], which: float, inserted: bytes | None) -> None:
    with new_log() as log:
        filled(log, appends)
        lines = log.path.read_bytes().split(b"\n")[:-1]
        at = int(which * len(lines))
        copy = lines[min(at, len(lines) - 1)]
        lines.insert(at, copy if inserted is None else inserted.replace(b"\n", b""))
        log.path.write_bytes(b"".join(line + b"\n" for line in lines))
        assert not log.verify().ok


@given(appends=batches, cut=st.integers(1, 400), later=st.lists(entries, min_size=1, max_size=3))
def test_a_crash_mid_append_is_reported_and_later_appends_verify(
    appends: list[list[Entry]], cut: int, later: list[Entry]
) -> None:
    with new_log() as log:
        filled(log, appends)
        data = log.path.read_bytes()
        last_line = len(data) - 1 - data.rindex(b"\n", 0, len(data) - 1) if data.count(b"\n") > 1 else len(data)
        lost = min(cut, last_line - 1)  # inside the last line: at least its b"\n", never all of it
        torn = data[: len(data) - lost]
        log.path.write_bytes(torn)
        verified = log.verify()
        assert verified.ok == (lost == 1), verified.problems  # losing only the b"\n" loses no record
        if lost > 1:
            number = torn.count(b"\n") + 1
            assert f"audit.jsonl:{number}: cut off after " in verified.problems[-1]
        log.append(later)
        assert log.verify().ok, log.verify().problems
        assert log.path.read_bytes().startswith(torn), "nothing already written is erased"
