"""Any text in any field stays inside its one record: the log verifies, reads back and takes the next append.

Issue #15, break 12: a tenant's capability ``NET_ADMIN`` + U+2028 went raw into a live-scan record; a reader
that split lines on U+2028 then called the untouched log TAMPERED and every later append raised.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.audit import AuditLog, printable
from gitopsguard.errors import GitOpsGuardError

# Every code point some line-splitting reader takes for the end of a line (str.splitlines, editors, JS).
LINE_BREAKERS = ["\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\r\n"]
FIELDS = ["event", "unit", "revision", "subject", "detail"]


def entry_with(field: str, text: str) -> tuple[str, str, str, str, str]:
    values = {"event": "policy-finding", "unit": "live-scan", "revision": "", "subject": "Pod/t/p", "detail": "d"}
    values[field] = text
    return (values["event"], values["unit"], values["revision"], values["subject"], values["detail"])


def as_read(text: str) -> str:
    """What a field reads back as: JSON (and UTF-16) take a high surrogate followed by a low one for the one
    character they encode; every other code point, a lone surrogate included, comes back as it went in."""
    pair = re.compile("[\ud800-\udbff][\udc00-\udfff]")
    return pair.sub(lambda m: m.group().encode("utf-16-le", "surrogatepass").decode("utf-16-le"), text)


def test_a_capability_name_ending_in_a_line_separator_leaves_the_log_intact(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append([entry_with("detail", "CAP-ADD-DANGEROUS capability NET_ADMIN\u2028 is added")])
    assert log.verify().ok, log.verify().problems
    log.append([("created", "dev", "abc", "ConfigMap/shop/a", "")])  # the keeper's next append
    assert log.verify().ok
    assert [r.detail for r in log.records()] == ["CAP-ADD-DANGEROUS capability NET_ADMIN\u2028 is added", ""]


@pytest.mark.parametrize("breaker", LINE_BREAKERS, ids=[f"U+{ord(b[0]):04X}" for b in LINE_BREAKERS])
@pytest.mark.parametrize("field", FIELDS)
def test_no_line_breaking_code_point_in_any_field_splits_its_record(tmp_path: Path, field: str, breaker: str) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    text = f"before{breaker}after{breaker}"
    log.append([entry_with(field, text), entry_with(field, "plain")])
    log.append([entry_with(field, text)])
    assert log.verify().ok, log.verify().problems
    assert [getattr(r, field) for r in log.records()] == [text, "plain", text]
    assert log.path.read_bytes().count(b"\n") == 3


def test_the_file_holds_one_ascii_line_per_record_whatever_the_text(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append([entry_with("detail", "é \u2028 \U0001f600 \x00 \x1b[31m \udc80 \ufeff")])
    data = log.path.read_bytes()
    assert data.isascii() and data.count(b"\n") == 1 and data.endswith(b"\n")


def test_a_lone_surrogate_in_a_field_is_recorded_instead_of_raising(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append([entry_with("subject", "Pod/t/\udc80\udcff"), entry_with("detail", "\ud800")])
    assert log.verify().ok
    assert [(r.subject, r.detail) for r in log.records()] == [("Pod/t/\udc80\udcff", "d"), ("Pod/t/p", "\ud800")]


def test_a_high_and_a_low_surrogate_side_by_side_read_back_as_their_character(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    written = log.append([entry_with("detail", "\ud83d\ude00")])
    assert written[0].detail == "\U0001f600" == as_read("\ud83d\ude00")
    assert [r.detail for r in log.records()] == ["\U0001f600"]
    assert log.verify().ok


def test_invalid_utf8_and_odd_types_in_fields_are_recorded_readably(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    odd: list[object] = [b"caps \xff\xfe NET_ADMIN", None, 10**400, ["a", {"b": 1}], 1.5]
    # values of types the signature does not allow, on purpose: the log must record them readably all the same
    log.append([("policy-finding", "live-scan", "", "Pod/t/p", value) for value in odd])  # type: ignore[misc]
    assert log.verify().ok
    details = [r.detail for r in log.records()]
    assert details[0] == "caps \\xff\\xfe NET_ADMIN"
    assert details[1:] == ["None", str(10**400), "['a', {'b': 1}]", "1.5"]


def test_a_log_written_before_the_fix_with_raw_unicode_still_verifies(tmp_path: Path) -> None:
    """Older versions wrote non-ASCII text raw (UTF-8) and hashed it so; such logs stay intact."""
    path = tmp_path / "audit.jsonl"
    old = (
        '{"seq": 1, "time": "2026-12-01T10:00:00.000+00:00", "event": "policy-finding", "unit": "live-scan", '
        '"revision": "", "subject": "Pod/t/p", "detail": "NET_ADMIN\u2028 café", "prev": "'
        + "0" * 64
        + '", "hash": "HASH"}\n'
    )
    body = json.loads(old.replace('"HASH"', '""'))
    del body["hash"]
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(f"{'0' * 64}\n{canonical}".encode()).hexdigest()
    path.write_bytes(old.replace("HASH", digest).encode())
    log = AuditLog(path)
    assert log.verify().ok, log.verify().problems
    log.append([("created", "dev", "abc", "ConfigMap/shop/a", "")])
    assert log.verify().ok
    assert [r.seq for r in log.records()] == [1, 2]


def test_audit_show_prints_one_line_per_record_and_escapes_control_text(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append([entry_with("detail", "NET_ADMIN\u2028\x1b]0;owned\x07\n   9 forged record"),
                entry_with("subject", "Pod/t/\udc80")])  # fmt: skip
    shown = subprocess.run(
        [sys.executable, "-m", "gitopsguard", "audit", "--log", str(log.path), "show"],
        capture_output=True, env={**os.environ, "PYTHONIOENCODING": "utf-8"}, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout.decode("utf-8")
    assert len(out.split("\n")) == 3 and out.isascii()
    assert "NET_ADMIN\\u2028\\x1b]0;owned\\x07\\n   9 forged record" in out
    assert "Pod/t/\\udc80" in out


def test_an_append_onto_a_line_that_is_not_a_record_refuses_and_says_what_to_do(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append([entry_with("detail", "one")])
    with log.path.open("ab") as handle:
        handle.write(b"edited by hand\n")
    with pytest.raises(GitOpsGuardError, match=r"audit\.jsonl:2: not an audit record.*audit verify"):
        log.append([entry_with("detail", "two")])
    assert log.path.read_bytes().count(b"\n") == 2


@given(st.text(st.characters(exclude_categories=())))
@example("NET_ADMIN\u2028\x1b[2J\\u2028\r\n\udc80\u202e")
def test_printed_text_is_one_line_without_hidden_characters_and_reads_back(text: str) -> None:
    shown = printable(text)
    assert not [c for c in shown if unicodedata.category(c) in {"Cc", "Cf", "Cs", "Zl", "Zp"}]
    assert shown.encode("latin-1", "backslashreplace").decode("unicode_escape") == text
