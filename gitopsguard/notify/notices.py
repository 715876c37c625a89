"""What is worth telling people, built from what the stages return (pure). Each notice says what happened,
to which object, why, and what the reader can do; ``key`` makes the same news go out once."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from gitopsguard.backup import Saved
from gitopsguard.backup.saved import adoption
from gitopsguard.grants.keeper import Transition
from gitopsguard.model import Action, Reason
from gitopsguard.notify.mrkdwn import notice_text
from gitopsguard.policy.live import Outcome
from gitopsguard.reconcile import ReconcileResult
from gitopsguard.scan.judged import Announcement

TITLES = {
    "blocked-revision": "Revision blocked by policy", "unreviewed-revision": "Unreviewed revision refused",
    "live-violation": "Live workload breaks policy",
    "deletion-scheduled": "Workload will be deleted", "deleted": "Workload deleted by policy",
    "drift-repaired": "Drift repaired", "brake-engaged": "Mass-prune brake engaged",
    "reconcile-failing": "Reconcile failing", "grant-activated": "Access granted",
    "grant-expired": "Access expired", "grant-denied": "Access request denied",
    "admission-denied": "Request denied at admission", "admission-break-glass": "Admission switched for a namespace",
}  # fmt: skip


@dataclass(frozen=True)
class Notice:
    event: str
    subject: str
    namespace: str  # "" for news about the cluster or a unit; else the team's namespace (for routing)
    what: str
    why: str
    action: str
    key: str  # the same key is announced once

    @property
    def title(self) -> str:
        return TITLES.get(self.event, self.event)

    def text(self) -> str:
        """The message, every value escaped for Slack (``mrkdwn``)."""
        return notice_text(self.title, self.subject, self.what, self.why, self.action)


def from_result(result: ReconcileResult) -> list[Notice]:
    """A blocked revision (one notice per namespace it touches), a failing pass, the brake, drift repairs."""
    revision = (result.revision or "")[:12]
    notices = []
    if result.error and result.evaluation is not None and result.evaluation.blocked:
        by_namespace: dict[str, list[str]] = defaultdict(list)
        for verdict in result.evaluation.blocked:
            codes = ", ".join(sorted({f"{f.code} ({f.policy})" for f in result.evaluation.blocking(verdict)}))
            by_namespace[verdict.key.namespace].append(f"{verdict.key} at {verdict.origin}: {codes}")
        for namespace, lines in sorted(by_namespace.items()):
            notices.append(Notice(
                "blocked-revision", f"unit {result.unit} @ {revision}", namespace,
                f"Nothing of commit {revision} was applied; the cluster keeps the last good revision.",
                "; ".join(lines), "Fix the objects in a new commit, or add a PolicyException with a reason and expiry.",
                f"blocked|{result.unit}|{result.revision}|{namespace}"))  # fmt: skip
    elif result.unreviewed is not None:
        refused = result.unreviewed
        notices.append(Notice("unreviewed-revision", f"unit {result.unit} @ {revision}", "",
                              f"Nothing of commit {revision} was applied: commit {refused.commit[:12]} "
                              f"({refused.who}) was not reviewed.", "; ".join(refused.problems[:5]),
                              "Merge the change through a reviewed pull request (or revert it); the cluster keeps "
                              "the last applied commit.", f"unreviewed|{result.unit}|{result.revision}"))  # fmt: skip
    elif result.error:
        notices.append(Notice("reconcile-failing", f"unit {result.unit}", "", result.error.splitlines()[0],
                              f"commit {revision or '?'}",
                              "See `gitopsguard status`; the cluster keeps its last good state.",
                              f"failing|{result.unit}|{result.revision}|{result.error}"))  # fmt: skip
    if result.brake:
        notices.append(Notice("brake-engaged", f"unit {result.unit} @ {revision}", "", "Nothing was deleted.",
                              result.brake, "If intended, put [gitopsguard: allow-mass-prune] in a commit message.",
                              f"brake|{result.unit}|{result.revision}"))  # fmt: skip
    for change in result.changes:
        if change.action is Action.DELETED and change.reason is Reason.UNMANAGED_DELETED:
            notices.append(Notice("deleted", str(change.key), change.key.namespace,
                                  f"Deleted: not in Git past its grace period (unit {result.unit}).", change.backup,
                                  f"Restore it: {change.restore}; {adoption('the file')}.",
                                  f"unmanaged-deleted|{change.key}|{result.revision}"))  # fmt: skip
        if change.repaired_drift:
            notices.append(Notice("drift-repaired", str(change.key), change.key.namespace,
                                  f"Restored to commit {revision}.", str(change.drift),
                                  "Change it in Git instead: edits outside Git are reverted.",
                                  f"drift|{change.key}|{change.detail}"))  # fmt: skip
    return notices


def from_announcements(announcements: Iterable[Announcement]) -> list[Notice]:
    """Live-scan news for policies that ask to be told (live: notify or delete); `report` stays quiet."""
    notices = []
    for a in announcements:
        if not a.verdict.notify or a.event == "resolved":
            continue
        codes = ", ".join(
            sorted({f"{f.code} {f.severity.value} ({f.policy}): {f.message}" for f in a.verdict.findings})
        )
        deadline = a.verdict.deadline
        if a.event == "violation" and a.verdict.outcome in (Outcome.SCHEDULED, Outcome.DELETE) and deadline:
            notices.append(Notice("deletion-scheduled", str(a.key), a.key.namespace,
                                  f"Will be deleted at {deadline:%Y-%m-%d %H:%M:%S} UTC unless fixed.", codes,
                                  "Fix it, or put it in Git; a backup is taken before deletion.",
                                  f"scheduled|{a.key}|{a.verdict.digest}"))  # fmt: skip
        elif a.event == "violation":
            notices.append(Notice("live-violation", str(a.key), a.key.namespace, a.detail or "Reported.", codes,
                                  "Fix it, or ask for a PolicyException by pull request.",
                                  f"violation|{a.key}|{a.verdict.digest}"))  # fmt: skip
        elif a.event == "deleted":
            done = f"Deleted after its grace period ({a.detail})."
            notices.append(Notice("deleted", str(a.key), a.key.namespace, done, codes, restoring(a.backup),
                                  f"deleted|{a.key}|{a.verdict.digest}"))  # fmt: skip
    return notices


def restoring(saved: Saved | None) -> str:
    """What a deletion notice asks: restore from the backup (where it is, the command), or adopt it into Git."""
    if saved is None:
        return "Re-create it from the backup after fixing it, through Git."
    return f"Backup: {saved.where}. Restore it: {saved.restore}; {saved.adopt}."


def from_transitions(transitions: Iterable[Transition]) -> list[Notice]:
    notices = []
    actions = {"activated": "Use it; it ends by itself.", "expired": "Ask again by pull request if still needed.",
               "denied": "Fix the request and open a new pull request."}  # fmt: skip
    for t in transitions:
        if t.event in actions:
            notices.append(Notice(f"grant-{t.event}", t.grant, "", t.detail, "temporary access (access/)",
                                  actions[t.event], f"grant|{t.grant}|{t.event}|{t.detail}"))  # fmt: skip
    return notices
