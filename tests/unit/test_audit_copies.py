"""Copies of the audit log, checked against an anchor: the records count, not how a log pipeline wrapped or
re-serialised their lines; whatever is removed, forged or rewritten shows."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.audit.anchor import GENESIS_HEAD, Anchor, Head
from gitopsguard.audit.copies import verify_copies
from gitopsguard.audit.durable import _chain
from gitopsguard.audit.record import AuditRecord, encode


def chain(count: int) -> tuple[AuditRecord, ...]:
    return _chain(GENESIS_HEAD, [("created", "dev", "abc", f"ConfigMap/shop/cm-{i}", "") for i in range(count)])


def anchor_of(records: tuple[AuditRecord, ...]) -> Anchor:
    return Anchor(Head(records[-1].seq, records[-1].hash), "pod/1/x", records[-1:])


def test_a_copy_from_kubectl_logs_with_timestamps_and_other_output_verifies(tmp_path: Path) -> None:
    records = chain(3)
    lines = [b"reconciling apps of https://***@example.com/repo.git (main)\n"]
    lines += [b"2026-12-05T12:00:00.123456789Z " + encode(r) for r in records]  # kubectl logs --timestamps
    lines.insert(2, b"ConfigMap/shop/cm-0 created\n")
    (tmp_path / "pod.log").write_bytes(b"".join(lines))
    result = verify_copies([tmp_path / "pod.log"], anchor=anchor_of(records))
    assert result.ok and result.records == 3


def test_records_a_pipeline_re_serialised_still_verify(tmp_path: Path) -> None:
    records = chain(3)
    text = "".join(json.dumps(dict(reversed(list(r.__dict__.items()))), indent=None) + "\n" for r in records)
    (tmp_path / "loki.jsonl").write_text(text)
    assert verify_copies([tmp_path / "loki.jsonl"], anchor=anchor_of(records)).ok


def test_the_same_record_in_two_copies_counts_once(tmp_path: Path) -> None:
    records = chain(4)
    (tmp_path / "a").write_bytes(b"".join(encode(r) for r in records[:3]))
    (tmp_path / "b").write_bytes(b"".join(encode(r) for r in records[2:]))  # record 3 carried by the next writer
    result = verify_copies([tmp_path / "a", tmp_path / "b"], anchor=anchor_of(records))
    assert result.ok and result.records == 4


def test_a_second_record_with_a_number_already_used_is_reported_as_forged(tmp_path: Path) -> None:
    records = chain(3)
    other = _chain(Head(1, records[0].hash), [("deleted", "dev", "abc", "ConfigMap/shop/cm-1", "")])[0]
    (tmp_path / "a").write_bytes(b"".join(encode(r) for r in records) + encode(other))
    problems = verify_copies([tmp_path / "a"], anchor=anchor_of(records)).problems
    assert any("record 2 differs from the one at" in p for p in problems), problems


def test_a_copy_may_go_past_a_saved_anchor_but_must_reach_it(tmp_path: Path) -> None:
    records = chain(5)
    (tmp_path / "a").write_bytes(b"".join(encode(r) for r in records))
    assert verify_copies([tmp_path / "a"], saved=Head(3, records[2].hash)).ok
    assert not verify_copies([tmp_path / "a"], saved=Head(6, records[4].hash)).ok
    assert not verify_copies([tmp_path / "a"], saved=Head(3, records[1].hash)).ok


@given(st.sets(st.integers(min_value=0, max_value=7), min_size=1))
@example({7})  # the newest record alone: the chain that is left is intact, only the anchor tells
def test_removing_any_records_from_a_copy_is_detected_against_the_anchor(removed: set[int]) -> None:
    import tempfile

    records = chain(8)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "copy"
        path.write_bytes(b"".join(encode(r) for i, r in enumerate(records) if i not in removed))
        assert not verify_copies([path], anchor=anchor_of(records)).ok


def test_a_window_of_the_log_verifies_from_since_and_a_gap_inside_it_does_not(tmp_path: Path) -> None:
    records = chain(6)
    (tmp_path / "window").write_bytes(b"".join(encode(r) for r in records[3:]))  # retention kept 4-6
    assert not verify_copies([tmp_path / "window"], anchor=anchor_of(records)).ok
    assert verify_copies([tmp_path / "window"], anchor=anchor_of(records), since=4).ok
    (tmp_path / "gap").write_bytes(b"".join(encode(r) for r in (records[2], records[4], records[5])))
    assert not verify_copies([tmp_path / "gap"], anchor=anchor_of(records), since=3).ok


def test_a_record_quoted_inside_another_line_is_not_read_as_one(tmp_path: Path) -> None:
    records = chain(3)
    forged = encode(replace(records[1], detail="forged")).decode().strip()
    cri = [f"2026-12-05T12:00:00.1Z stdout F {encode(r).decode()}" for r in records]
    docker = [json.dumps({"log": encode(r).decode(), "stream": "stdout"}) + "\n" for r in records]
    quoted = f"ConfigMap/shop/x failed: the server said {forged}\n"  # a tenant's text in an error message
    (tmp_path / "cri").write_text("".join(cri) + quoted)
    (tmp_path / "docker").write_text("".join(docker))
    assert verify_copies([tmp_path / "cri"], anchor=anchor_of(records)).ok
    assert verify_copies([tmp_path / "docker"], anchor=anchor_of(records)).ok
