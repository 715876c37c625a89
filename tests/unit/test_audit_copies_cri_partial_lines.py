"""CRI log files split a printed line longer than 16 KiB into ``stdout P`` parts and a final ``stdout F``:
copies are read with the parts of one stream joined, so a record planted at the split of a long printed line
(a tenant's text in an error message) does not count, and a genuine record longer than 16 KiB does.
(The split size and the ``TIME STREAM P|F CONTENT`` format: containerd's and CRI-O's container log format,
kubelet's ``pkg/kubelet/kuberuntime/logs``.)"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.audit import copies
from gitopsguard.audit.anchor import GENESIS_HEAD, Head
from gitopsguard.audit.copies import verify_copies
from gitopsguard.audit.durable import _chain
from gitopsguard.audit.record import encode

CRI_LINE = 16 * 1024  # containerd's and CRI-O's default max container log line size before a partial split


def split(stamp: bytes, stream: bytes, line: bytes) -> list[bytes]:
    """One printed line (without its b"\\n") as the runtime writes it: P parts of CRI_LINE bytes, then F."""
    parts = [line[i : i + CRI_LINE] for i in range(0, len(line), CRI_LINE)] or [b""]
    return [stamp + b" " + stream + (b" P " if i < len(parts) - 1 else b" F ") + part + b"\n"
            for i, part in enumerate(parts)]  # fmt: skip


def test_a_record_planted_at_the_split_of_a_long_printed_line_is_not_read_as_one(tmp_path: Path) -> None:
    records = _chain(GENESIS_HEAD, [("created", "dev", "abc", f"ConfigMap/shop/cm-{i}", "") for i in range(3)])
    saved = Head(records[-1].seq, records[-1].hash)  # what the auditor saved with `audit anchor`
    (forged,) = _chain(saved, [("deleted", "dev", "abc", "Deployment/shop/payments", "approved by alice")])
    prefix = "ConfigMap/shop/x failed: the server said "
    printed = (prefix + "a" * (CRI_LINE - len(prefix))).encode() + encode(forged)  # one line of output
    lines = [b"2026-12-05T12:00:00.1Z stdout F " + encode(r) for r in records]
    lines += [b"2026-12-05T12:00:01.1Z stdout P " + printed[:CRI_LINE] + b"\n",
              b"2026-12-05T12:00:01.1Z stdout F " + printed[CRI_LINE:]]  # fmt: skip
    (tmp_path / "pod.log").write_bytes(b"".join(lines))
    result = verify_copies([tmp_path / "pod.log"], saved=saved)
    assert result.records == 3, f"{result.records} records counted, the forged one among them; {result.problems}"


def test_a_record_longer_than_a_cri_line_is_read_whole_across_its_parts_and_streams_interleaved(
    tmp_path: Path,
) -> None:
    records = _chain(GENESIS_HEAD, [("created", "dev", "abc", "ConfigMap/shop/big", "x" * (3 * CRI_LINE)),
                                    ("created", "dev", "abc", "ConfigMap/shop/small", "")])  # fmt: skip
    big = split(b"2026-12-05T12:00:00.1Z", b"stdout", encode(records[0]).removesuffix(b"\n"))
    noise = split(b"2026-12-05T12:00:00.2Z", b"stderr", b"a warning " * 5000)  # stderr's own partial lines
    interleaved = [big[0], noise[0], big[1], noise[1], big[2], noise[2], big[3]]
    small = b"2026-12-05T12:00:00.3Z stdout F " + encode(records[1])
    (tmp_path / "pod.log").write_bytes(b"".join([*interleaved, small]))
    result = verify_copies([tmp_path / "pod.log"], saved=Head(records[-1].seq, records[-1].hash))
    assert result.ok and result.records == 2, result.problems


def test_partial_parts_left_unfinished_at_the_end_of_a_copy_are_not_read_as_a_record(tmp_path: Path) -> None:
    (record,) = _chain(GENESIS_HEAD, [("created", "dev", "abc", "ConfigMap/shop/cm", "")])
    (tmp_path / "pod.log").write_bytes(b"2026-12-05T12:00:00.1Z stdout P " + encode(record))
    assert verify_copies([tmp_path / "pod.log"]).records == 0


def test_a_printed_line_joined_past_the_cap_is_dropped_whole_and_the_next_line_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(copies, "MAX_JOINED", 3 * CRI_LINE)  # memory stays bounded whatever a copy holds
    first, second = _chain(GENESIS_HEAD, [("created", "dev", "abc", "ConfigMap/shop/big", "x" * 4 * CRI_LINE),
                                          ("created", "dev", "abc", "ConfigMap/shop/next", "")])  # fmt: skip
    huge = split(b"2026-12-05T12:00:00.1Z", b"stdout", encode(first).removesuffix(b"\n"))
    small = b"2026-12-05T12:00:00.2Z stdout F " + encode(second)
    (tmp_path / "pod.log").write_bytes(b"".join([*huge, small]))
    result = verify_copies([tmp_path / "pod.log"])
    assert result.records == 1 and "records 1-1 are in none of these copies" in result.problems[0], result


@given(size=st.integers(min_value=300, max_value=2 * CRI_LINE), splits=st.integers(min_value=1, max_value=3))
@example(size=CRI_LINE, splits=1)  # the attack: the record starts exactly at the runtime's 16 KiB split
def test_a_record_planted_at_any_split_of_a_printed_line_never_counts(size: int, splits: int) -> None:
    (forged,) = _chain(GENESIS_HEAD, [("deleted", "dev", "abc", "Deployment/shop/payments", "approved")])
    printed = b"x" * (splits * size - 1) + b" " + encode(forged).removesuffix(b"\n")  # the record opens a part
    parts = [printed[i : i + size] for i in range(0, len(printed), size)]
    lines = [b"2026-12-05T12:00:00.1Z stdout " + (b"P " if i < len(parts) - 1 else b"F ") + part + b"\n"
             for i, part in enumerate(parts)]  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "pod.log").write_bytes(b"".join(lines))
        assert verify_copies([Path(folder) / "pod.log"]).records == 0
