"""A deletion's notice says where the backup is, the command that restores it, and how to adopt it into Git,
for the live scan's deletions and the unmanaged-workload sweep's."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from gitopsguard.backup import DirectoryBackups
from gitopsguard.model import Action, Change, ObjectKey, Reason
from gitopsguard.notify.notices import from_result
from gitopsguard.reconcile import ReconcileResult


def test_the_notice_of_an_unmanaged_deletion_says_where_the_backup_is_and_how_to_restore_it() -> None:
    key = ObjectKey("", "Pod", "shop", "stray")
    where = "/var/lib/gitopsguard/backups/apps/shop/Pod-stray-x.yaml"
    change = Change(
        key, "v1", Action.DELETED, Reason.UNMANAGED_DELETED, backup=where, restore=f"kubectl apply -f {where}"
    )
    assert change.detail == f"unmanaged past its grace period; backup: {where}; restore: kubectl apply -f {where}"
    (notice,) = from_result(ReconcileResult("apps", "a" * 40, (change,)))
    assert notice.event == "deleted" and notice.why == "/var/lib/gitopsguard/backups/apps/shop/Pod-stray-x.yaml"
    assert "Restore it: kubectl apply -f /var/lib/gitopsguard/backups/apps/shop/Pod-stray-x.yaml" in notice.action
    assert "pull request" in notice.action


def test_a_directory_backup_names_its_file_and_the_kubectl_apply_that_restores_it(tmp_path: Path) -> None:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stray", "namespace": "shop"}}
    key = ObjectKey("", "Pod", "shop", "stray")
    saved = DirectoryBackups(tmp_path).under("apps").save(key, body, datetime(2026, 1, 1, tzinfo=UTC), reason="r")
    assert Path(saved.where).is_file() and saved.where.startswith(str(tmp_path / "apps" / "shop"))
    assert saved.restore == f"kubectl apply -f {saved.where}"
