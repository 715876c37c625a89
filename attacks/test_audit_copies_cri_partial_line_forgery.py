"""Attack: a tenant's (or a Git contributor's) text in the controller's printed output, read back from the
node's CRI log files by a log pipeline. The container runtime splits a line longer than 16 KiB into partial
lines: ``TIME stdout P <first 16 KiB>`` then ``TIME stdout F <the rest>``. ``audit/copies.py`` takes a line
after a ``stdout P``/``stdout F`` prefix as a line of its own, so the tail of a long printed line (an error
message quoting the tenant's text, a change list) becomes a "record" if the tenant placed one at byte 16384.

A forged record numbered past the head and chained onto it (the head's hash is in every copy of the log) is
then accepted by ``audit verify --anchor SAVED`` as a newer genuine record.

Guarantee broken: audit/copies.py "a record quoted inside another line (a tenant's text in an error message)
is not read as one"; docs/audit-and-backups.md "Lines that are not records (other output, ... runtime prefixes
before the `{`) are skipped". (Also the converse: a genuine record longer than 16 KiB is split and lost.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gitopsguard.audit.anchor import GENESIS_HEAD, Head
from gitopsguard.audit.copies import verify_copies
from gitopsguard.audit.durable import _chain
from gitopsguard.audit.record import encode

CRI_LINE = 16 * 1024  # containerd's and CRI-O's default max container log line size before a partial split


@pytest.mark.xfail(strict=True, reason="CRI partial lines are read one by one: the tail of a split line passes "
                   "as a line of its own, and a record planted there counts")  # fmt: skip
def test_a_record_at_the_split_of_a_long_printed_line_is_not_read_as_one(tmp_path: Path) -> None:
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
