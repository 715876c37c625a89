"""The audit chain anchored in a ConfigMap on the real API server: replicas racing extend one chain, a
restarted writer continues from the anchor, a crash between anchoring and writing loses nothing, and
`audit verify --anchor` finds an edited, cut or fully rewritten copy."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitopsguard.audit.anchor import ANCHOR_NAME, AnchorStore
from gitopsguard.audit.copies import verify_copies
from gitopsguard.audit.durable import AnchoredLog
from gitopsguard.audit.log import _record
from gitopsguard.audit.record import GENESIS, AuditRecord, decode, digest, encode
from gitopsguard.cli import main
from gitopsguard.cluster import connect
from gitopsguard.cluster.rest import RawApi
from tests.integration.conftest import LiveCluster, bind_user
from tests.integration.test_controller_account import account_kubeconfig

pytestmark = pytest.mark.integration


def entry(i: int, who: str = "w") -> tuple[str, str, str, str, str]:
    return ("admission-denied", "admission", "", f"Pod/shop/p-{who}-{i}", f"denied {i}")


def anchored(api: client.ApiClient, namespace: str, path: Path | None, **kw: object) -> AnchoredLog:
    return AnchoredLog(path, AnchorStore(RawApi(api), namespace, "audit-anchor"), **kw)  # type: ignore[arg-type]


def records_in(path: Path) -> list[AuditRecord]:
    return [decode(line, str(path)) for line in path.read_bytes().splitlines()]


def test_two_replicas_racing_extend_one_chain_with_no_number_used_twice(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    printed: dict[str, list[bytes]] = {"a": [], "b": []}
    logs = {who: anchored(admin_api, namespace, tmp_path / f"{who}.jsonl", echo=printed[who].append) for who in "ab"}

    def write(who: str) -> None:
        for i in range(40):
            logs[who].append([entry(i, who)])

    threads = [threading.Thread(target=write, args=(who,)) for who in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    anchor = logs["a"].anchor.read()
    assert anchor is not None and anchor.head.seq == 81  # the record that created the anchor, then 80
    copies = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    result = verify_copies(copies, anchor=anchor)
    assert result.ok, result.problems
    assert result.records == 81
    stdout = tmp_path / "stdout.log"
    stdout.write_bytes(b"".join(printed["a"] + printed["b"]))  # standard output alone is a full copy too
    assert verify_copies([stdout], anchor=anchor).ok


def test_a_restarted_writer_continues_the_chain_from_the_anchor_not_from_its_empty_file(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    first = anchored(admin_api, namespace, tmp_path / "pod-1.jsonl")
    first.append([entry(i) for i in range(3)])
    first.append([entry(3)])
    head = records_in(tmp_path / "pod-1.jsonl")[-1]

    restarted = anchored(admin_api, namespace, tmp_path / "pod-2.jsonl")  # a new Pod: a new writer, a new file
    (record,) = restarted.append([entry(9)])
    assert (record.seq, record.prev) == (head.seq + 1, head.hash)
    copies = [tmp_path / "pod-1.jsonl", tmp_path / "pod-2.jsonl"]
    assert verify_copies(copies, anchor=restarted.anchor.read()).ok
    alone = verify_copies([tmp_path / "pod-2.jsonl"], anchor=restarted.anchor.read()).problems
    assert alone == ("records 1-4 are in none of these copies (removed, or a copy missing)",)  # it carried 5 only


def test_a_crash_between_anchoring_and_writing_loses_no_record(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    log = anchored(admin_api, namespace, tmp_path / "a.jsonl")
    log.append([entry(1)])
    # the process anchors its next records and dies before writing them anywhere
    store = AnchorStore(RawApi(admin_api), namespace, "audit-anchor")
    store.advance("crashed-pod/1/dead", lambda a: (_record(a.head.seq + 1, a.head.hash, *entry(2)),))  # type: ignore[union-attr]
    survivor = anchored(admin_api, namespace, tmp_path / "b.jsonl")
    survivor.append([entry(3)])
    assert [r.detail for r in records_in(tmp_path / "b.jsonl")] == ["denied 2", "denied 3"]
    result = verify_copies([tmp_path / "a.jsonl", tmp_path / "b.jsonl"], anchor=store.read())
    assert result.ok, result.problems


@pytest.fixture
def full_copy(admin_api: client.ApiClient, namespace: str, tmp_path: Path) -> tuple[AnchoredLog, Path]:
    log = anchored(admin_api, namespace, tmp_path / "audit.jsonl")
    for i in range(5):
        log.append([entry(i)])
    return log, tmp_path / "audit.jsonl"


def test_an_edited_copy_is_detected_against_the_anchor(full_copy: tuple[AnchoredLog, Path]) -> None:
    log, path = full_copy
    path.write_bytes(path.read_bytes().replace(b"denied 2", b"denied X"))
    problems = verify_copies([path], anchor=log.anchor.read()).problems
    assert any("record 4 was edited" in p for p in problems), problems


def test_a_copy_cut_at_a_record_boundary_is_detected_against_the_anchor(full_copy: tuple[AnchoredLog, Path]) -> None:
    log, path = full_copy
    path.write_bytes(b"".join(line + b"\n" for line in path.read_bytes().splitlines()[:-2]))
    assert log.verify().ok  # on its own the shorter chain is intact
    (problem,) = verify_copies([path], anchor=log.anchor.read()).problems
    assert "end at record 4, but the anchor is at record 6" in problem


def test_a_copy_rewritten_with_every_hash_recomputed_is_detected_against_the_anchor(
    full_copy: tuple[AnchoredLog, Path],
) -> None:
    log, path = full_copy
    forged, prev = [], GENESIS
    for record in records_in(path):  # hide record 3, then make every hash and link right again
        fields = replace(record, prev=prev, detail="nothing here" if record.seq == 3 else record.detail, hash="")
        forged.append(replace(fields, hash=digest(fields.body())))
        prev = forged[-1].hash
    path.write_bytes(b"".join(encode(record) for record in forged))
    assert log.verify().ok  # the chain alone cannot tell
    (problem,) = verify_copies([path], anchor=log.anchor.read()).problems
    assert "record 6 is not the one the anchor holds (the log was rewritten)" in problem


def test_records_appended_by_hand_past_the_anchor_are_detected(full_copy: tuple[AnchoredLog, Path]) -> None:
    log, path = full_copy
    last = records_in(path)[-1]
    path.write_bytes(path.read_bytes() + encode(_record(last.seq + 1, last.hash, *entry(99))))
    (problem,) = verify_copies([path], anchor=log.anchor.read()).problems
    assert "records 7-7 are past the anchor's head" in problem


def test_audit_verify_checks_copies_against_the_cluster_anchor_and_a_saved_one(
    dev_cluster: LiveCluster, admin_api: client.ApiClient, tmp_path: Path
) -> None:
    log = AnchoredLog(tmp_path / "audit.jsonl", AnchorStore(RawApi(admin_api)))
    try:
        log.append([entry(1)])
        base = ["audit", "--log", str(tmp_path / "audit.jsonl")]
        kube = ["--kubeconfig", str(dev_cluster.kubeconfig)]
        saved = CliRunner().invoke(main, [*base, "anchor", *kube])
        assert saved.exit_code == 0, saved.output
        (tmp_path / "anchor.json").write_text(saved.output)
        assert json.loads(saved.output)["seq"] >= 1

        ok = CliRunner().invoke(main, [*base, "verify", "--anchor", "cluster", *kube])
        assert ok.exit_code == 0, ok.output
        log.append([entry(2)])
        assert CliRunner().invoke(main, [*base, "verify", "--anchor", str(tmp_path / "anchor.json")]).exit_code == 0
        lines = (tmp_path / "audit.jsonl").read_bytes().splitlines()
        (tmp_path / "audit.jsonl").write_bytes(b"\n".join(lines[:-1]) + b"\n")
        cut = CliRunner().invoke(main, [*base, "verify", "--anchor", "cluster", *kube])
        assert cut.exit_code == 1 and "TAMPERED" in cut.output
    finally:
        RawApi(admin_api).request("DELETE", f"/api/v1/namespaces/gitopsguard-system/configmaps/{ANCHOR_NAME}")


def test_a_tenant_cannot_move_the_anchor_that_the_controller_account_writes(
    dev_cluster: LiveCluster, admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    parts = ("namespace.yaml", "controller-rbac.yaml")
    controller = connect(account_kubeconfig(dev_cluster, admin_api, tmp_path, parts), "controller")
    try:
        AnchoredLog(None, AnchorStore(RawApi(controller))).append([entry(1)])  # the controller's own account
        bind_user(admin_api, namespace, "alice-edit", "ClusterRole", "edit")  # alice: edit in her namespace
        alice = client.CoreV1Api(dev_cluster.api("dev-alice"))
        with pytest.raises(ApiException) as refused:
            alice.patch_namespaced_config_map(ANCHOR_NAME, "gitopsguard-system", {"data": {"head": "1:" + "0" * 64}})
        assert refused.value.status == 403
    finally:
        RawApi(admin_api).request("DELETE", f"/api/v1/namespaces/gitopsguard-system/configmaps/{ANCHOR_NAME}")


def test_a_fresh_anchor_continues_the_chain_its_log_file_already_holds(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    from gitopsguard.audit import AuditLog

    AuditLog(tmp_path / "audit.jsonl").append([entry(i) for i in range(3)])  # written before anchoring was on
    log = anchored(admin_api, namespace, tmp_path / "audit.jsonl")
    log.append([entry(4)])
    records = records_in(tmp_path / "audit.jsonl")
    assert [r.event for r in records][3:] == ["audit-anchored", "admission-denied"]
    assert log.verify().ok and verify_copies([tmp_path / "audit.jsonl"], anchor=log.anchor.read()).ok


def test_two_controllers_in_turn_print_one_chain_on_standard_output_that_verifies_against_the_anchor(
    dev_cluster: LiveCluster, admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    from tests.gitrepo import Upstream

    upstream = Upstream(tmp_path / "repo")
    upstream.write("apps/a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\n")
    upstream.commit()

    def leader(workdir: str) -> str:  # each run is a new process as far as the chain is concerned
        result = CliRunner().invoke(main, [
            "reconcile", "--repo", upstream.url, "--path", "apps", "--unit", namespace, "--namespace", namespace,
            "--kubeconfig", str(dev_cluster.kubeconfig), "--workdir", str(tmp_path / workdir),
            "--audit-log", "-", "--audit-anchor",
        ])  # fmt: skip
        assert result.exit_code == 0, result.output
        return result.output

    try:
        (tmp_path / "pod-1.log").write_text(leader("one"))
        upstream.write("apps/b.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata: {k: v}\n")
        upstream.commit()
        (tmp_path / "pod-2.log").write_text(leader("two"))
        assert f"ConfigMap/{namespace}/b" in (tmp_path / "pod-2.log").read_text()
        logs = [str(tmp_path / "pod-1.log"), str(tmp_path / "pod-2.log")]
        kube = ["--kubeconfig", str(dev_cluster.kubeconfig)]
        verified = CliRunner().invoke(main, ["audit", "verify", *logs, "--anchor", "cluster", *kube])
        assert verified.exit_code == 0 and "intact" in verified.output, verified.output
        alone = CliRunner().invoke(main, ["audit", "verify", logs[0], "--anchor", "cluster", *kube])
        assert alone.exit_code == 1, alone.output  # the first leader's output lacks the second's records
    finally:
        RawApi(admin_api).request("DELETE", f"/api/v1/namespaces/gitopsguard-system/configmaps/{ANCHOR_NAME}")


def test_standard_output_alone_without_the_anchor_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["reconcile", "--repo", str(tmp_path), "--path", "apps", "--audit-log", "-",
                                       "--kubeconfig", str(tmp_path / "none")])  # fmt: skip
    assert result.exit_code == 2 and "add --audit-anchor" in result.output


def test_an_append_cut_off_by_a_crash_in_the_file_is_set_aside_and_anchored(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    log = anchored(admin_api, namespace, tmp_path / "audit.jsonl")
    log.append([entry(1)])
    with (tmp_path / "audit.jsonl").open("ab") as handle:
        handle.write(b'{"seq": 3, "time": "2026-')  # the process died in the middle of its write
    log.append([entry(2)])
    assert [r.event for r in log.records()] == ["audit-anchored", "admission-denied", "audit-cut-off",
                                                "admission-denied"]  # fmt: skip
    assert log.verify().ok and verify_copies([tmp_path / "audit.jsonl"], anchor=log.anchor.read()).ok


def test_an_anchor_edited_by_hand_stops_recording_with_a_message_and_writes_nothing(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    from gitopsguard.errors import GitOpsGuardError

    log = anchored(admin_api, namespace, tmp_path / "audit.jsonl")
    log.append([entry(1)])
    before = (tmp_path / "audit.jsonl").read_bytes()
    client.CoreV1Api(admin_api).patch_namespaced_config_map(
        "audit-anchor", namespace, {"data": {"head": "7:" + "a" * 64}}
    )
    with pytest.raises(GitOpsGuardError, match=r"ConfigMap/.*/audit-anchor: cannot anchor the audit log .*head is not"):
        anchored(admin_api, namespace, tmp_path / "audit.jsonl").append([entry(2)])
    assert (tmp_path / "audit.jsonl").read_bytes() == before


def test_records_anchored_but_not_written_out_are_written_by_the_next_append(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    from gitopsguard.errors import GitOpsGuardError

    printed: list[bytes] = []
    broken = [True]

    def stdout(lines: bytes) -> None:  # standard output closed once (a full pipe, a log agent restarting)
        if broken.pop() if broken else False:
            raise OSError("Broken pipe")
        printed.append(lines)

    log = anchored(admin_api, namespace, None, echo=stdout)
    with pytest.raises(GitOpsGuardError, match="the next append writes them out"):
        log.append([entry(1)])
    log.append([entry(2)])
    (tmp_path / "stdout.log").write_bytes(b"".join(printed))
    result = verify_copies([tmp_path / "stdout.log"], anchor=log.anchor.read())
    assert result.ok and result.records == 3, result.problems
