"""A saved anchor file is read or refused with a message naming it, whatever it holds: `audit verify --anchor
FILE` takes a file an attacker may have handed over."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.audit.anchor import Anchor, Head, load_saved
from gitopsguard.errors import GitOpsGuardError


def test_what_audit_anchor_prints_reads_back_as_its_head(tmp_path: Path) -> None:
    head = Head(41, "ab" * 32)
    (tmp_path / "anchor.json").write_text(Anchor(head, "pod/1/x").saved())
    assert load_saved(tmp_path / "anchor.json") == head
    (tmp_path / "head.txt").write_text(f"{head.text()}\n")
    assert load_saved(tmp_path / "head.txt") == head


@given(st.binary(max_size=300))
@example(b"[" * 100_000)  # deeper than json's recursion limit
@example(b'{"seq": 1' + b"0" * 5000 + b', "hash": "' + b"a" * 64 + b'"}')  # a number past any int
@example(b'{"seq": true, "hash": "' + b"a" * 64 + b'"}')
@example(b"\xff\xfe")
def test_any_saved_anchor_file_is_read_or_refused_with_its_name(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "anchor.json"
        path.write_bytes(content)
        try:
            head = load_saved(path)
        except GitOpsGuardError as error:
            assert str(error).startswith(str(path))
        else:
            assert 0 <= head.seq < 10**18 and len(head.hash) == 64


def test_a_head_with_a_hash_that_is_not_hex_is_refused() -> None:
    with pytest.raises(GitOpsGuardError, match="--head: expected SEQ:HASH"):
        Head.parse("5:" + "z" * 64, "--head")
