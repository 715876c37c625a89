"""The demo's people and its review: alice (team-shop) writes, carol (a security reviewer and administrator)
reviews by merging with a signed merge. Their SSH keys are made at demo time beside the demo's state, never
in the repository; the demo's trust file maps them and holds the review rules the loop runs with
(``--review-mode signed-merge``). The step ``show_review`` pushes a change straight to main (refused, the
cluster keeps its state), then brings the same change through carol's signed merge (applied)."""

from __future__ import annotations

import queue
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
import yaml
from kubernetes import client

from gitopsguard.commands.review import ReviewOptions, reviewer_for
from gitopsguard.reconcile import ReconcileResult
from gitopsguard.source.review import Reviewer

PEOPLE = {"alice": ["team-shop"], "carol": ["security-reviewers"]}
RULES = {
    "reviews": [
        {"paths": ["policies/", "access/policies/"], "approvers": {"groups": ["security-reviewers"]}},
        {"paths": ["**"], "approvers": "any"},
    ]
}
_LOG_LEVEL = re.compile(r"(path: /data/LOG_LEVEL\n\s+value: )(\S+)")


@dataclass(frozen=True)
class DemoPeople:
    """alice and carol: their private keys (in ``keys``, outside the repository) and the trust file."""

    keys: Path

    @property
    def trust(self) -> Path:
        return self.keys / "trust.yaml"

    def key(self, person: str) -> Path:
        return self.keys / person

    def git(self, repo: Path, person: str, *args: str) -> str:
        """git as ``person``: their name, and their key for -S."""
        config = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={self.key(person)}",
                  "-c", f"user.name={person}", "-c", f"user.email={person}@example.com"]  # fmt: skip
        return subprocess.run(["git", *config, *args], cwd=repo, check=True, capture_output=True, text=True).stdout

    def reviewer(self, trust_from: str, state: Path) -> Reviewer:
        """The loop's reviewer: signed merges as the demo trust file's rules require, from ``trust_from``."""
        reviewer = reviewer_for(ReviewOptions("signed-merge", self.trust, trust_from), state)
        if reviewer is None:  # cannot happen: the mode is signed-merge
            raise RuntimeError("the demo reviewer is missing")
        return reviewer


def demo_people(keys: Path) -> DemoPeople:
    """Keys for alice and carol (made once with ssh-keygen, kept with the demo's state) and their trust file."""
    keys.mkdir(parents=True, exist_ok=True)
    signers = []
    for person, groups in PEOPLE.items():
        key = keys / person
        if not key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", person, "-f", str(key)], check=True)
        signers.append({"user": person, "groups": groups, "keys": [(keys / f"{person}.pub").read_text().strip()]})
    people = DemoPeople(keys)
    people.trust.write_text(yaml.safe_dump({"administrators": ["carol"], "signers": signers, **RULES}))
    return people


def signed_commit(people: DemoPeople, repo: Path, person: str, message: str) -> str:
    """Commit everything in the working tree as ``person``, signed; the new commit's id."""
    people.git(repo, person, "add", "-A")
    people.git(repo, person, "commit", "-q", "-S", "-m", message)
    return people.git(repo, person, "rev-parse", "HEAD").strip()


def reviewed_change(people: DemoPeople, repo: Path, branch: str, edit: Callable[[], None], message: str) -> str:
    """alice makes ``edit`` on ``branch`` (a signed commit), carol merges it with a signed merge: the review.
    The merge commit's id."""
    people.git(repo, "alice", "checkout", "-q", "-b", branch, "main")
    edit()
    signed_commit(people, repo, "alice", message)
    people.git(repo, "carol", "checkout", "-q", "main")
    people.git(repo, "carol", "merge", "-q", "--no-ff", "-S", "-m", f"Merge {branch} (reviewed by carol)", branch)
    return people.git(repo, "carol", "rev-parse", "HEAD").strip()


def next_result(
    results: queue.Queue[ReconcileResult], wanted: Callable[[ReconcileResult], bool], timeout: float = 30.0
) -> ReconcileResult | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = results.get(timeout=0.2)
        except queue.Empty:
            continue
        if wanted(result):
            return result
    return None


@dataclass(frozen=True)
class ReviewShown:
    """What ``show_review`` saw: the refused push and the cluster's value then, the merge and the value after."""

    pushed: str
    refused: ReconcileResult | None
    kept: str
    merged: str = ""
    applied: ReconcileResult | None = None
    after: str = ""


def show_review(api: client.ApiClient, repo: Path, people: DemoPeople, results: queue.Queue[ReconcileResult]) -> (
    ReviewShown | None
):  # fmt: skip
    """alice pushes a change straight to main: refused, the cluster keeps its state. She reverts it, and the
    same change through carol's signed merge is applied."""
    overlay = repo / "clusters" / "dev" / "kustomization.yaml"
    found = _LOG_LEVEL.search(overlay.read_text())
    if found is None:
        click.echo("\n(skipped the review step: clusters/dev/kustomization.yaml no longer patches LOG_LEVEL)")
        return None
    old = _live_log_level(api)
    new = "trace" if old != "trace" else "debug"

    def edit() -> None:
        overlay.write_text(_LOG_LEVEL.sub(lambda m: m.group(1) + new, overlay.read_text(), count=1))

    click.echo(f"\nalice pushes a change straight to main, unreviewed: LOG_LEVEL {old} -> {new} in clusters/dev ...")
    edit()
    pushed = signed_commit(people, repo, "alice", f"Log at {new} level in dev")
    refused = next_result(results, lambda r: r.unreviewed is not None and r.unreviewed.head == pushed)
    kept = _live_log_level(api)
    if refused is None:
        click.echo("... NOT refused within 30 s; see the messages above.")
        return ReviewShown(pushed, None, kept)
    click.echo(f"... refused; the cluster keeps the last applied commit (ConfigMap shop-settings: LOG_LEVEL={kept}):")
    click.echo(f"    {refused.error}".replace("\n", "\n    "))
    people.git(repo, "alice", "revert", "--no-edit", "-S", "HEAD")
    branch = f"alice-log-{new}-{int(time.time())}"
    click.echo(f"alice reverts her push and makes the same change on branch {branch}; carol merges it (signed) ...")
    merged = reviewed_change(people, repo, branch, edit, f"Log at {new} level in dev")
    applied = next_result(results, lambda r: r.error is None and r.revision == merged)
    after = _live_log_level(api)
    if applied is None:
        click.echo("... the merge was not applied within 30 s; see the messages above.")
    else:
        how = applied.review.summary() if applied.review else "-"
        click.echo(f"... applied (ConfigMap shop-settings: LOG_LEVEL={after}); reviewed: {how}")
    return ReviewShown(pushed, refused, kept, merged, applied, after)


def _live_log_level(api: client.ApiClient) -> str:
    configmap = client.CoreV1Api(api).read_namespaced_config_map("shop-settings", "shop")
    return str((configmap.data or {}).get("LOG_LEVEL", "?"))
