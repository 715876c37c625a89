"""Glue for reviewed revisions: the reviewer a command's options ask for, what a pass's review becomes in the
audit log and Events, and ``gitopsguard verify-range``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from gitopsguard.cluster.events import EventRecorder
from gitopsguard.cluster.inventory import reference
from gitopsguard.errors import GitOpsGuardError
from gitopsguard.evidence.github import GitHubApi
from gitopsguard.evidence.history import Git
from gitopsguard.evidence.trust import github_logins, load_trust
from gitopsguard.source.review import Reviewer, ReviewMode, ReviewSettings, UnreviewedRevisionError
from gitopsguard.source.rules import load_rules

OFF_WARNING = ("warning: --review-mode off: commits are applied whoever pushed them, reviewed or not. Use "
               "--review-mode signed-merge or github with --trust FILE")  # fmt: skip
AuditEntry = tuple[str, str, str, str, str]


@dataclass(frozen=True)
class ReviewOptions:
    mode: str = "off"
    trust: Path | None = None
    trust_from: str | None = None
    branch: str = "main"
    github_repo: str | None = None
    github_api_url: str = "https://api.github.com"
    github_token: str | None = None


def reviewer_for(o: ReviewOptions, state_dir: Path) -> Reviewer | None:
    """The reviewer the options ask for; None (and a warning) in mode off. GitOpsGuardError saying what to
    add when the options are incomplete."""
    mode = ReviewMode(o.mode)
    if mode is ReviewMode.OFF:
        click.echo(OFF_WARNING, err=True)
        return None
    if o.trust is None:
        raise GitOpsGuardError(f"--review-mode {mode.value} needs --trust FILE: the signers and review rules")
    signers = load_trust(o.trust)
    rules = load_rules(o.trust, {s.identity.user: s.identity for s in signers})
    if not rules.rules:
        raise GitOpsGuardError(f"{o.trust}: has no `reviews` rules, so no change could ever be applied; add them "
                               "(see docs/reviewed-revisions.md)")  # fmt: skip
    forge = None
    if mode is ReviewMode.GITHUB:
        if not o.github_repo or not o.github_token:
            raise GitOpsGuardError(
                "--review-mode github needs --github-repo OWNER/NAME and a token in $GITOPSGUARD_GITHUB_TOKEN or "
                "the file $GITOPSGUARD_GITHUB_TOKEN_FILE names"
            )
        forge = GitHubApi(o.github_api_url, o.github_repo, o.github_token)
    logins = tuple(github_logins(signers).items())
    return Reviewer(ReviewSettings(mode, rules, signers, state_dir, o.branch, o.trust_from, forge, logins))


def audit_entries(unit: str, revision: str, review_summary: str, refused: UnreviewedRevisionError | None) -> list[
    AuditEntry
]:  # fmt: skip
    """What the audit log says about a pass's review: who approved an applied revision, or what was refused."""
    entries: list[AuditEntry] = []
    if review_summary:
        entries.append(("revision-reviewed", unit, revision, f"unit/{unit}", review_summary))
    if refused is not None:
        detail = f"commit {refused.commit} ({refused.who}): " + "; ".join(refused.problems[:20])
        entries.append(("revision-unreviewed", unit, revision, f"unit/{unit}", detail))
    return entries


def mark(events: EventRecorder, unit: str, reason: str, message: str, *, warning: bool = True) -> None:
    """An Event on the unit's inventory ConfigMap (the unit's own object until units are API objects)."""
    events.record(reference(unit), reason, message, warning=warning)


def verify_range(repository: Path, old: str, new: str, o: ReviewOptions, state_dir: Path) -> int:
    """``gitopsguard verify-range``: 0 when every step of old..new is reviewed, 1 when one is not."""
    reviewer = reviewer_for(o, state_dir)
    if reviewer is None:
        raise GitOpsGuardError("verify-range needs --review-mode signed-merge or github")
    git = Git(repository.resolve())
    commits = [git("rev-parse", "--verify", "--end-of-options", f"{name}^{{commit}}") if name else None
               for name in (old, new)]  # fmt: skip
    try:
        review = reviewer.verify(repository.resolve(), commits[0], commits[1] or "")
    except UnreviewedRevisionError as refused:
        click.echo(str(refused))
        return 1
    for approved in review.approved:
        click.echo(f"{approved.commit[:12]} {approved.how} ({approved.paths} paths at the head)")
    click.echo(f"{new[:12]}: reviewed; {review.summary()}")
    return 0
