"""A one-off `gitopsguard reconcile` keeps nothing of its render past the pass: no document memo (it renders
once), and a result whose verdicts no longer hold the mutated manifests. Both kept every rendered body (and,
through the prepared-form cache, its prepared copy) alive while the audit records were written, the command's
peak (bench/README.md, "Memory")."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

from gitopsguard.commands.reconcile_once import record, reported
from gitopsguard.model import Action, Change, Manifest, ObjectKey, Reason
from gitopsguard.policy import DenyLevel, Evaluation, Finding, ObjectResult, Severity
from gitopsguard.reconcile import ReconcileResult
from gitopsguard.render.stored import RenderStore

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: value\n"


def checkout(root: Path) -> Path:
    (root / "apps").mkdir(parents=True)
    (root / "apps" / "cms.yaml").write_text("---\n".join(CONFIGMAP.format(name=f"cm-{n}") for n in range(3)))
    return root


def rendered_then_dropped(store: RenderStore, root: Path, commit: str) -> weakref.ref[Manifest]:
    manifests = store.render(root, "apps", commit)
    assert [m.key.name for m in manifests] == ["cm-0", "cm-1", "cm-2"]
    kept = weakref.ref(manifests[0])
    del manifests
    gc.collect()
    return kept


def test_a_store_without_memo_keeps_no_manifest_once_its_caller_drops_the_render(tmp_path: Path) -> None:
    root = checkout(tmp_path / "checkout")
    one_off = RenderStore(tmp_path / "renders", memo=False)
    assert rendered_then_dropped(one_off, root, "c1")() is None
    # the loop's store (the default) keeps the last render's documents for the next render: what the test tells apart
    loop = RenderStore(tmp_path / "loop-renders")
    assert rendered_then_dropped(loop, root, "c1")() is not None


def test_a_store_without_memo_renders_what_a_store_with_one_renders(tmp_path: Path) -> None:
    root = checkout(tmp_path / "checkout")
    plain = RenderStore(tmp_path / "a", memo=False).render(root, "apps", "c1")
    memoized = RenderStore(tmp_path / "b").render(root, "apps", "c1")
    assert [(m.key, m.origin, m.body) for m in plain] == [(m.key, m.origin, m.body) for m in memoized]


def verdicts() -> Evaluation:
    key = ObjectKey("", "ConfigMap", "shop", "cm-0")
    manifest = Manifest(key, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm-0"}}, "apps/a.yaml:1")
    finding = Finding("no-latest", "NL1", "image", "warn", Severity.HIGH, "uses :latest", "spec", "pin it", True)
    result = ObjectResult(key, "v1", "apps/a.yaml:1", (finding,), (), denied=True)
    return Evaluation((manifest,), (result,), DenyLevel.LOW)


def test_the_reported_result_drops_the_manifests_and_keeps_every_verdict() -> None:
    evaluation = verdicts()
    change = Change(evaluation.results[0].key, "v1", Action.CREATED, Reason.APPLIED)
    result = ReconcileResult("shop", "abc123", (change,), error="denied", evaluation=evaluation)
    slim = reported(result)
    assert slim.evaluation is not None and slim.evaluation.manifests == ()
    assert slim.evaluation.results == evaluation.results and slim.evaluation.blocked == evaluation.blocked
    assert slim.evaluation.blocking(slim.evaluation.results[0]) == evaluation.blocking(evaluation.results[0])
    assert (slim.changes, slim.error, slim.unit, slim.revision) == (result.changes, result.error, "shop", "abc123")
    assert reported(ReconcileResult("shop", None, ())) == ReconcileResult("shop", None, ())


def test_the_audit_of_a_reported_result_is_the_audit_of_the_whole_result(tmp_path: Path) -> None:
    from gitopsguard.audit import AuditLog

    evaluation = verdicts()
    change = Change(evaluation.results[0].key, "v1", Action.CREATED, Reason.APPLIED)
    result = ReconcileResult("shop", "abc123", (change,), error="denied", evaluation=evaluation)
    whole, slim = AuditLog(tmp_path / "whole.jsonl"), AuditLog(tmp_path / "slim.jsonl")
    record(whole, result)
    record(slim, reported(result))

    def fields(log: AuditLog) -> list[tuple[str, str, str, str, str]]:
        return [(r.event, r.unit, r.revision, r.subject, r.detail) for r in log.records()]

    assert fields(slim) == fields(whole)
    assert ("policy-denied", "shop", "abc123", "ConfigMap/shop/cm-0") in [f[:4] for f in fields(slim)]
