"""An anchor write the API server applied but whose answer was lost (a connection reset after sending, a
timeout while the server was slow): the writer re-reads the anchor, finds its own attempt there, takes it as
committed and writes its records out. The entries are anchored once, under one number, and no copy has a gap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from gitopsguard.audit.anchor import ATTEMPTS, AnchorStore
from gitopsguard.audit.copies import verify_copies
from gitopsguard.audit.durable import AnchoredLog
from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import GitOpsGuardError, UnreachableError

pytestmark = pytest.mark.integration


class LosesAnswers(RawApi):
    """The real API server; the answers to the next ``lose`` anchor updates it applies never arrive."""

    lose = 0

    def request(self, method: str, path: str, *args: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        answer: tuple[int, dict[str, Any]] = super().request(method, path, *args, **kwargs)
        if self.lose and method == "PUT" and path.endswith("/audit-anchor") and answer[0] == 200:
            self.lose -= 1
            raise UnreachableError(f"{path}: the connection was reset before the answer arrived")
        return answer


def entry(i: int) -> tuple[str, str, str, str, str]:
    return ("deleted-by-policy", "live-scan", "", f"Deployment/shop/web-{i}", f"deleted {i}")


@pytest.mark.parametrize("lost", [1, 2])
def test_an_anchor_write_whose_answer_was_lost_neither_loses_nor_doubles_records(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path, lost: int
) -> None:
    raw = LosesAnswers(admin_api)
    printed: list[bytes] = []
    log = AnchoredLog(tmp_path / "audit.jsonl", AnchorStore(raw, namespace, "audit-anchor"), echo=printed.append)
    log.append([entry(1)])
    raw.lose = lost
    (record,) = log.append([entry(2)])  # succeeds: the first lost write is found applied
    log.append([entry(3)])
    assert record.detail == "deleted 2"
    anchor = log.anchor.read()
    result = verify_copies([tmp_path / "audit.jsonl"], anchor=anchor)
    details = [r.detail for r in log.records()]
    assert result.ok, result.problems
    assert details.count("deleted 2") == 1, details
    assert anchor is not None and anchor.head.seq == 4  # the seed, then 1, 2, 3: each anchored once
    (tmp_path / "stdout.log").write_bytes(b"".join(printed))
    assert verify_copies([tmp_path / "stdout.log"], anchor=anchor).ok


def test_the_anchor_remembers_only_its_last_attempts_and_refuses_an_edited_list(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    store = AnchorStore(RawApi(admin_api), namespace, "audit-anchor")
    log = AnchoredLog(None, store, echo=lambda _: None)
    for i in range(ATTEMPTS + 3):
        log.append([entry(i)])
    anchor = store.read()
    assert anchor is not None and len(anchor.attempts) == ATTEMPTS and anchor.attempts[-1][1] == anchor.head.seq
    client.CoreV1Api(admin_api).patch_namespaced_config_map("audit-anchor", namespace, {"data": {"attempts": "x:1"}})
    with pytest.raises(GitOpsGuardError, match=r"ConfigMap/.*/audit-anchor: .*data.attempts is not a list of ID:SEQ"):
        AnchoredLog(None, AnchorStore(RawApi(admin_api), namespace, "audit-anchor")).append([entry(99)])
