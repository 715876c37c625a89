"""Records anchored but not written out (standard output broken, a disk full) stay in the anchor's batch until
a write-out succeeds, however many appends fail in a row: no record leaves the anchor before some copy holds it.
Past a cap the anchor refuses new records (fail closed, with a message) rather than drop any, and recording
resumes on its own once the output is back."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.audit.anchor import AnchorStore
from gitopsguard.audit.copies import verify_copies
from gitopsguard.audit.durable import AnchoredLog
from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import GitOpsGuardError

pytestmark = pytest.mark.integration


def entry(i: int) -> tuple[str, str, str, str, str]:
    return ("deleted-by-policy", "live-scan", "", f"Deployment/shop/web-{i}", f"deleted {i}")


class Stdout:
    """Standard output that fails ``broken`` times (a log agent restarting, a full pipe), then keeps lines."""

    def __init__(self, broken: int) -> None:
        self.broken, self.printed = broken, list[bytes]()

    def __call__(self, lines: bytes) -> None:
        if self.broken:
            self.broken -= 1
            raise OSError("Broken pipe")
        self.printed.append(lines)


def test_records_of_two_appends_that_failed_to_write_are_not_lost(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    stdout = Stdout(broken=2)
    log = AnchoredLog(None, AnchorStore(RawApi(admin_api), namespace, "audit-anchor"), echo=stdout)
    for i in (1, 2):
        with pytest.raises(GitOpsGuardError, match="the next append writes them out"):
            log.append([entry(i)])
    log.append([entry(3)])  # the pipe is back: this append writes out everything anchored before it
    (tmp_path / "stdout.log").write_bytes(b"".join(stdout.printed))
    result = verify_copies([tmp_path / "stdout.log"], anchor=log.anchor.read())
    assert result.ok and result.records == 4, result.problems
    log.append([entry(4)])
    anchor = log.anchor.read()
    assert anchor is not None and [r.detail for r in anchor.batch] == ["deleted 4"]  # written out: let go


def test_past_the_cap_new_records_are_refused_and_none_is_dropped_until_the_output_is_back(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    stdout = Stdout(broken=5)
    log = AnchoredLog(None, AnchorStore(RawApi(admin_api), namespace, "audit-anchor"), echo=stdout, backlog=600)
    refused = 0
    for i in range(4):
        try:
            log.append([entry(i)])
        except GitOpsGuardError as error:
            refused += "nothing new was recorded" in str(error)
    assert refused, "past the cap an append is refused"
    anchor = log.anchor.read()
    assert anchor is not None and anchor.batch[0].seq == 1, "no record left the anchor unwritten"
    stdout.broken = 0
    log.append([entry(9)])
    (tmp_path / "stdout.log").write_bytes(b"".join(stdout.printed))
    result = verify_copies([tmp_path / "stdout.log"], anchor=log.anchor.read())
    assert result.ok, result.problems
