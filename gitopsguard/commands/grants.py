"""`gitopsguard grants ...`: list grants, print the grants account's RBAC, and keep grants beside `run`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click
import yaml
from kubernetes import client

from gitopsguard.audit import AuditLog
from gitopsguard.cluster.events import EventRecorder
from gitopsguard.cluster.inventory import CONTROLLER_NAMESPACE
from gitopsguard.cluster.rest import RawApi
from gitopsguard.commands.secrets import secret
from gitopsguard.errors import SourceError
from gitopsguard.evidence.history import Git, History
from gitopsguard.grants.bindings import Binder
from gitopsguard.grants.github import GitHubApprovals
from gitopsguard.grants.keeper import GrantKeeper, Transition
from gitopsguard.grants.load import load_escalation_policies
from gitopsguard.grants.model import DEFAULT_KEEPER
from gitopsguard.grants.rbac import grants_rbac
from gitopsguard.grants.signed import SignedMergeVerifier, TrustedSigner, github_logins, load_trust
from gitopsguard.grants.store import STORE_NAME, GrantStore
from gitopsguard.source import GitSource

GRANTS_UNIT = "grants"


def list_grants(api: client.ApiClient) -> int:
    entries = GrantStore(RawApi(api)).load()
    if not entries:
        click.echo("no grants seen yet")
        return 0
    now = datetime.now(UTC)
    header = ("GRANT", "STATE", "SUBJECT", "ROLE", "SCOPE", "APPROVER", "START", "EXPIRES", "LEFT")
    rows = [header]
    for entry in sorted(entries.values(), key=lambda e: (e.memory.state != "ACTIVE", e.name)):
        m = entry.memory
        left = str(m.expires - now).split(".")[0] if m.expires and m.state == "ACTIVE" and m.expires > now else "-"
        rows.append((entry.name, m.state.value, entry.subject, entry.role, entry.scope, m.approver or "-",
                     f"{m.start:%Y-%m-%d %H:%M:%S}" if m.start else "-",
                     f"{m.expires:%Y-%m-%d %H:%M:%S}" if m.expires else "-", left))  # fmt: skip
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    for row in rows:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    for entry in entries.values():
        if entry.memory.state == "DENIED":
            click.echo(f"{entry.name} ({entry.path}) denied: {entry.memory.reason}")
    return 0


def print_rbac(repository: Path) -> int:
    click.echo(yaml.safe_dump_all(grants_rbac(load_escalation_policies(repository)), sort_keys=False), nl=False)
    return 0


@dataclass(frozen=True)
class GitHubSettings:
    api_url: str
    repository: str  # owner/name
    token: str


def github_token() -> str | None:
    """From $GITOPSGUARD_GITHUB_TOKEN, or the file $GITOPSGUARD_GITHUB_TOKEN_FILE names; never printed."""
    return secret("GITOPSGUARD_GITHUB_TOKEN", "GitHub token")


def repository_sync(
    keeper: GrantKeeper, source: GitSource, signers: tuple[TrustedSigner, ...], state_dir: Path,
    github: GitHubSettings | None = None,
) -> Callable[[], list[Transition]]:  # fmt: skip
    """One read of the repository for the keeper: fetch, gather approval evidence, and sync. The same history
    rule as reconcile's: the branch must still contain the last commit the keeper read (remembered in its
    state ConfigMap), so a force-push can neither bring back a revoked grant nor drop an active one. Another
    repository or branch (the controller pointed elsewhere) starts a history of its own, as a new unit does."""

    history = f"{source.credentials.scrub(source.spec.url)}#{source.spec.branch}"

    def sync() -> list[Transition]:
        last = keeper.last_read(history)
        try:
            revision = source.fetch(last_applied=last)
            if last:
                _require_first_parent(revision.checkout, source.spec.branch, last, revision.commit)
        except SourceError as error:
            raise SourceError(f"grants: {error}. The keeper keeps its current grants meanwhile (they still "
                              f"expire); the last commit it read is kept in ConfigMap {CONTROLLER_NAMESPACE}/"
                              f"{STORE_NAME}, key 'commit'") from error  # fmt: skip
        checkout = revision.checkout
        verifier: SignedMergeVerifier | GitHubApprovals
        if github is None:
            verifier = SignedMergeVerifier(checkout, signers, state_dir)
        else:
            verifier = GitHubApprovals(
                checkout, api_url=github.api_url, owner_repo=github.repository, branch=source.spec.branch,
                token=github.token, logins=github_logins(signers),
                admins=frozenset(s.identity.user for s in signers if s.admin),
            )  # fmt: skip
        return keeper.sync(checkout, verifier, verifier.blob, commit=revision.commit, history=history)

    return sync


def _require_first_parent(checkout: Path, branch: str, last: str, new: str) -> None:
    """Evidence follows first parents, so the commit last read must be on the new head's first-parent chain:
    a merge whose first parent is an older commit (and second the head) makes an old history the branch
    again, bringing back what was approved there and since undone, though it contains the head."""
    if not History(Git(checkout)).on_first_parent_chain(last, new):
        raise SourceError(f"{checkout}: branch {branch!r} moved from {last[:12]} to {new[:12]}, whose first-parent "
                          f"chain does not hold {last[:12]} (a merge that puts an older commit first); refusing to "
                          "follow it. Merge into the branch (the branch as first parent) or revert with a new "
                          "commit instead")  # fmt: skip


def start_keeper(
    api: client.ApiClient, source: GitSource, trust: Path, state_dir: Path, log: AuditLog, stop: threading.Event,
    interval: float = 30.0, github: GitHubSettings | None = None,
    also: Callable[[list[Transition]], None] = lambda _: None,
    watch: Callable[[Callable[[], tuple[int, int]]], None] = lambda _: None, keeper_name: str = DEFAULT_KEEPER,
) -> threading.Thread:  # fmt: skip
    """Keep grants in a thread of its own, from a clone of its own: signed-merge mode, or github mode. A keeper
    named other than the cluster's (``keeper_name``) marks, sweeps and remembers only its own bindings."""
    signers = load_trust(trust)  # fail now, at startup, on a bad trust file
    events = EventRecorder(RawApi(api))
    binder = Binder(api, keeper=keeper_name)
    keeper = GrantKeeper(binder, GrantStore(RawApi(api), name=binder.keeper))
    watch(keeper.counts)  # its failed rounds and bad inputs, for the metrics
    sync = repository_sync(keeper, source, signers, state_dir, github)

    def report(transitions: list[Transition]) -> None:
        for t in transitions:
            click.echo(f"grant {t.grant} {t.event}: {t.detail}")
        log.append([(f"grant-{t.event}", GRANTS_UNIT, "", t.grant, t.detail) for t in transitions])
        for t in transitions:
            if t.binding is not None and t.event in ("activated", "expired"):
                namespace, name = t.binding
                body = {"apiVersion": "rbac.authorization.k8s.io/v1",
                        "kind": "RoleBinding" if namespace else "ClusterRoleBinding",
                        "metadata": {"name": name, "namespace": namespace or "default"}}  # fmt: skip
                events.record(body, f"Grant{t.event.capitalize()}", f"{t.grant}: {t.detail}", warning=False)
        also(transitions)
        problems = []
        while keeper.problems:
            problem = keeper.problems.pop(0)
            click.echo(f"grants: {problem}", err=True)
            problems.append(("grant-problem", GRANTS_UNIT, "", "", problem))
        if problems:  # a refused rewind, a file denied, a binding not made: on the record, not just on stderr
            log.append(problems)

    thread = threading.Thread(target=keeper.run, args=(stop, sync, report, interval), name="grants", daemon=True)
    thread.start()
    return thread
