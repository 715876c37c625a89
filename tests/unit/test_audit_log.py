"""The audit log chains records by hash; verify finds edited, removed, reordered and truncated records."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from gitopsguard.audit import AuditLog, records_for
from gitopsguard.model import Action, Change, ObjectKey


def filled(tmp_path: Path, count: int = 4) -> AuditLog:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append([("created", "dev", "abc123", f"ConfigMap/shop/cm-{i}", "") for i in range(count)])
    return log


def rewrite(log: AuditLog, edit: object) -> None:
    lines = log.path.read_text().splitlines()
    lines = edit(lines)  # type: ignore[operator]
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
    changes = [Change(key, Action.UNCHANGED), Change(key, Action.CONFIGURED), Change(key, Action.SKIPPED, "brake")]
    entries = records_for("dev", "abc", changes)
    assert [e[0] for e in entries] == ["configured", "skipped"]
    assert json.dumps(entries)
