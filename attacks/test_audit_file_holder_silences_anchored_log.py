"""Attack: someone who can write the audit file (the shared PersistentVolumeClaim) but not the ConfigMap in
gitopsguard-system. With the anchor on, the chain continues from the anchor, "whatever its own file holds"
(docs/audit-and-backups.md). But an append first reads the file's last line, and a complete line that is not
a record makes it refuse before anchoring: nothing is recorded anywhere (not in the anchor, not on standard
output), on every replica sharing the volume, for as long as the line stays. Admission swallows the error and
goes on (admission/record.py), so denials and break-glass switches made meanwhile leave no record, and
`audit verify` cannot find records that were never made.

Guarantee broken: "a new leader or a restarted Pod continues from the anchor whatever its own file holds";
"Tampering is found" turns into "tampering stops the audit trail" (docs/threat-model.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.audit.anchor import AnchorStore
from gitopsguard.audit.durable import AnchoredLog
from gitopsguard.cluster.rest import RawApi

pytestmark = pytest.mark.integration


def entry(i: int) -> tuple[str, str, str, str, str]:
    return ("admission-break-glass-off", "admission", "", f"Namespace/shop-{i}", "by mallory: admission turned off")


@pytest.mark.xfail(strict=True, reason="an append reads the file's last line before anchoring, and a line that "
                   "is not a record stops every replica's recording, the anchor's included")  # fmt: skip
def test_a_line_planted_in_the_shared_file_does_not_stop_anchored_recording(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    path = tmp_path / "audit.jsonl"
    printed: list[bytes] = []
    store = AnchorStore(RawApi(admin_api), namespace, "audit-anchor")
    log = AnchoredLog(path, store, echo=printed.append)
    log.append([entry(1)])
    with path.open("ab") as handle:
        handle.write(b"not a record\n")  # the file holder's whole edit: one line
    log.append([entry(2)])  # today: GitOpsGuardError "... Nothing was appended: the log was changed outside ..."
    anchor = store.read()
    assert anchor is not None and anchor.batch[-1].subject == "Namespace/shop-2"
