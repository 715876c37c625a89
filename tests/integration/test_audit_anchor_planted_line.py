"""Someone who can write the audit file (the shared PersistentVolumeClaim) but not the anchor ConfigMap in
gitopsguard-system: with the anchor on, the anchor is the truth. A line that is not a record in the file is
set aside and recorded (an ``audit-set-aside`` record naming its line and SHA-256), never a reason to stop
recording: every replica goes on anchoring and printing, and `audit verify` still reports the planted line."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.audit.anchor import AnchorStore
from gitopsguard.audit.copies import verify_copies
from gitopsguard.audit.durable import AnchoredLog
from gitopsguard.audit.record import AuditRecord, decode, encode
from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import GitOpsGuardError

pytestmark = pytest.mark.integration


def entry(i: int) -> tuple[str, str, str, str, str]:
    return ("admission-break-glass-off", "admission", "", f"Namespace/shop-{i}", "by mallory: admission turned off")


def test_a_line_planted_in_the_shared_file_is_set_aside_and_recording_goes_on(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    path = tmp_path / "audit.jsonl"
    printed: list[bytes] = []
    store = AnchorStore(RawApi(admin_api), namespace, "audit-anchor")
    log = AnchoredLog(path, store, echo=printed.append)
    log.append([entry(1)])
    with path.open("ab") as handle:
        handle.write(b"not a record\n")  # the file holder's whole edit: one line
    log.append([entry(2)])
    other = AnchoredLog(path, AnchorStore(RawApi(admin_api), namespace, "audit-anchor"))  # another replica
    other.append([entry(3)])
    anchor = store.read()
    assert anchor is not None and anchor.batch[-1].subject == "Namespace/shop-3"
    events = [r.event for r in verify_records(path)]
    assert events == ["audit-anchored", "admission-break-glass-off", "audit-set-aside", "admission-break-glass-off",
                      "admission-break-glass-off"]  # fmt: skip
    assert verify_copies([path], anchor=anchor).ok
    assert any(":3: not an audit record" in p for p in log.verify().problems), log.verify().problems
    (tmp_path / "stdout.log").write_bytes(b"".join(printed))
    assert b"audit-log/line-3" in (tmp_path / "stdout.log").read_bytes()


def verify_records(path: Path) -> list[AuditRecord]:
    found = []
    for line in path.read_bytes().splitlines():
        try:
            found.append(decode(line, str(path)))
        except GitOpsGuardError:
            continue
    return found


def test_a_forged_record_numbered_past_the_anchor_does_not_keep_carried_records_out_of_the_file(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    from gitopsguard.audit.log import _record

    path = tmp_path / "audit.jsonl"
    store = AnchorStore(RawApi(admin_api), namespace, "audit-anchor")
    AnchoredLog(path, store).append([entry(1)])
    # another replica anchors record 3 and dies before writing it out
    store.advance("crashed-pod/1/dead", lambda a: (_record(a.head.seq + 1, a.head.hash, *entry(2)),))  # type: ignore[union-attr]
    with path.open("ab") as handle:  # the file holder claims the file already reaches record 9
        handle.write(encode(_record(9, "f" * 64, *entry(9))))
    AnchoredLog(path, AnchorStore(RawApi(admin_api), namespace, "audit-anchor")).append([entry(3)])
    assert "Namespace/shop-2" in [r.subject for r in verify_records(path)], "the carried record reached the file"
