"""Attack: a crash at any point / a full disk. The anchor keeps only the records of the *last* append, so when
two appends in a row are anchored but not written out (standard output broken twice, a disk full for two
appends), the first one's records leave the anchor before anyone writes them: they are in no copy, forever.

Guarantee broken (docs/audit-and-backups.md, "The anchor"): "no record is lost from the copies"; commit 292aa2c:
"records anchored but not written out (a full disk, a broken standard output) are written by the next append".
"""

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


@pytest.mark.xfail(strict=True, reason="the anchor's batch holds only the last append: records of an earlier "
                   "unwritten append are dropped when a second append also fails to write")  # fmt: skip
def test_records_of_two_appends_that_failed_to_write_are_not_lost(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    printed: list[bytes] = []
    failures = [True, True]  # standard output broken for two appends (a log agent restarting, a full pipe)

    def stdout(lines: bytes) -> None:
        if failures:
            failures.pop()
            raise OSError("Broken pipe")
        printed.append(lines)

    log = AnchoredLog(None, AnchorStore(RawApi(admin_api), namespace, "audit-anchor"), echo=stdout)
    with pytest.raises(GitOpsGuardError, match="the next append writes them out"):
        log.append([entry(1)])
    with pytest.raises(GitOpsGuardError, match="the next append writes them out"):
        log.append([entry(2)])
    log.append([entry(3)])  # the pipe is back: this append is to write out everything anchored before it
    (tmp_path / "stdout.log").write_bytes(b"".join(printed))
    result = verify_copies([tmp_path / "stdout.log"], anchor=log.anchor.read())
    assert result.ok, result.problems  # today: "records 1-2 are in none of these copies"
