"""The audit log chains records by hash; verify finds edited, removed, reordered and truncated records."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gitopsguard.audit import AuditLog, records_for
from gitopsguard.model import Action, Change, ObjectKey, Reason


def filled(tmp_path: Path, count: int = 4) -> AuditLog:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append([("created", "dev", "abc123", f"ConfigMap/shop/cm-{i}", "") for i in range(count)])
    return log


def rewrite(log: AuditLog, edit: Callable[[list[str]], list[str]]) -> None:
    lines = log.path.read_text().splitlines()
    lines = edit(lines)
    log.path.write_text("\n".join(lines) + "\n")


def test_records_are_numbered_and_chained(tmp_path: Path) -> None:
    log = filled(tmp_path, 3)
    log.append([("deleted", "dev", "def456", "ConfigMap/shop/cm-0", "left Git")])
    records = list(log.records())
    assert [r.seq for r in records] == [1, 2, 3, 4]
    assert records[0].prev == "0" * 64
    assert all(later.prev == earlier.hash for earlier, later in itertools.pairwise(records))
    assert log.verify().ok


def test_an_edited_record_is_detected(tmp_path: Path) -> None:
    log = filled(tmp_path)
    rewrite(log, lambda lines: [lines[0], lines[1].replace("cm-1", "cm-X"), *lines[2:]])
    result = log.verify()
    assert not result.ok
    assert any("record 2 was edited" in problem for problem in result.problems)


def test_a_removed_record_is_detected(tmp_path: Path) -> None:
    log = filled(tmp_path)
    rewrite(log, lambda lines: [lines[0], *lines[2:]])
    assert any("record 3 follows record 1" in problem for problem in log.verify().problems)


def test_reordered_records_are_detected(tmp_path: Path) -> None:
    log = filled(tmp_path)
    rewrite(log, lambda lines: [lines[0], lines[2], lines[1], lines[3]])
    assert not log.verify().ok


def test_truncation_is_detected_against_a_saved_head(tmp_path: Path) -> None:
    log = filled(tmp_path)
    last = list(log.records())[-1]
    assert log.verify(expected_head=(last.seq, last.hash)).ok
    rewrite(log, lambda lines: lines[:-1])
    assert any("truncated" in problem for problem in log.verify(expected_head=(last.seq, last.hash)).problems)


def test_a_recomputed_chain_is_detected_against_a_saved_head(tmp_path: Path) -> None:
    log = filled(tmp_path, 2)
    head = list(log.records())[-1]
    forged = AuditLog(tmp_path / "forged.jsonl")
    forged.append([("created", "dev", "abc123", "ConfigMap/shop/other", "") for _ in range(2)])
    assert forged.verify().ok, "a forger can recompute every hash..."
    assert not forged.verify(expected_head=(head.seq, head.hash)).ok, "...but not match the saved head"


def test_garbage_line_is_reported_with_its_line_number(tmp_path: Path) -> None:
    log = filled(tmp_path, 2)
    with log.path.open("a") as handle:
        handle.write("not json\n")
    assert any(problem.endswith(("(Expecting value: line 1 column 1 (char 0))",)) and ":3:" in problem
               for problem in log.verify().problems)  # fmt: skip


def test_unchanged_objects_are_not_recorded() -> None:
    key = ObjectKey("", "ConfigMap", "shop", "a")
    changes = [
        Change(key, "v1", Action.UNCHANGED, Reason.IN_SYNC),
        Change(key, "v1", Action.CONFIGURED, Reason.APPLIED),
        Change(key, "v1", Action.SKIPPED, Reason.BRAKE, note="it would delete 3 of 4 objects"),
    ]
    entries = records_for("dev", "abc", changes)
    assert [e[0] for e in entries] == ["configured", "skipped"]
    assert json.dumps(entries)


def test_a_line_cut_off_by_a_crash_is_reported_with_its_line_and_size(tmp_path: Path) -> None:
    log = filled(tmp_path, 3)
    data = log.path.read_bytes()
    log.path.write_bytes(data[: len(data) - 40])  # the last append died 40 bytes short of its end
    result = log.verify()
    assert not result.ok
    assert result.records == 2
    (problem,) = result.problems
    assert problem.startswith(f"{log.path}:3: cut off after ")
    assert "no end of line" in problem and "records 1-2 before it are intact" in problem


def test_an_append_after_a_crash_sets_the_cut_off_line_aside_and_the_log_verifies(tmp_path: Path) -> None:
    log = filled(tmp_path, 3)
    data = log.path.read_bytes()
    torn = data[: len(data) - 40]
    log.path.write_bytes(torn)
    written = log.append([("created", "dev", "abc123", "ConfigMap/shop/later", "")])
    assert [(r.seq, r.event) for r in written] == [(3, "audit-cut-off"), (4, "created")]
    assert written[0].subject == "audit-log/line-3"
    assert log.path.read_bytes().startswith(torn + b"\n"), "the cut-off bytes are kept, not erased"
    assert log.verify().ok, log.verify().problems
    assert [r.seq for r in log.records()] == [1, 2, 3, 4]
    log.append([("deleted", "dev", "abc123", "ConfigMap/shop/later", "")])
    assert log.verify().ok


def test_a_last_record_that_only_lacks_its_end_of_line_is_kept_and_chained_onto(tmp_path: Path) -> None:
    log = filled(tmp_path, 2)
    log.path.write_bytes(log.path.read_bytes()[:-1])
    assert log.verify().ok
    assert [r.seq for r in log.append([("created", "dev", "abc123", "ConfigMap/shop/x", "")])] == [3]
    assert log.verify().ok and log.path.read_bytes().count(b"\n") == 3


def test_garbage_in_the_middle_is_not_excused_as_a_crash(tmp_path: Path) -> None:
    log = filled(tmp_path, 2)
    lines = log.path.read_bytes().split(b"\n")
    log.path.write_bytes(b"\n".join([lines[0], lines[1][:30], *lines[1:]]))
    assert any(":2: not an audit record" in problem for problem in log.verify().problems)


def test_an_inserted_copy_of_a_record_is_detected(tmp_path: Path) -> None:
    log = filled(tmp_path, 3)
    rewrite(log, lambda lines: [lines[0], lines[1], lines[1], lines[2]])
    assert any("record 2 follows record 2" in problem for problem in log.verify().problems)


def test_whitespace_added_inside_a_record_is_detected(tmp_path: Path) -> None:
    log = filled(tmp_path, 2)
    rewrite(log, lambda lines: [lines[0].replace('"seq": 1,', '"seq":  1,'), lines[1]])
    assert any(":1: not written as gitopsguard writes records" in problem for problem in log.verify().problems)


def test_an_append_that_fails_half_way_writes_nothing_not_even_the_repair(tmp_path: Path) -> None:
    log = filled(tmp_path, 2)
    torn = log.path.read_bytes()[:-20]
    log.path.write_bytes(torn)

    def entries() -> Iterator[tuple[str, str, str, str, str]]:
        yield ("created", "dev", "abc123", "ConfigMap/shop/x", "")
        raise RuntimeError("the caller failed while listing what to record")

    with pytest.raises(RuntimeError):
        log.append(entries())
    assert log.path.read_bytes() == torn
    assert [r.event for r in log.append([("created", "dev", "abc123", "ConfigMap/shop/x", "")])] == [
        "audit-cut-off",
        "created",
    ]
    assert log.verify().ok
