"""``gitopsguard reconcile``: one pass over one unit, printed as one line per object."""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import click
from kubernetes import client

from gitopsguard.audit import AuditLog, records_for
from gitopsguard.audit.anchor import AnchorStore
from gitopsguard.audit.durable import check_choice, open_log
from gitopsguard.backup.gitrepo import GitBackups, GitBackupSpec, refuse_source
from gitopsguard.cluster import connect
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.events import EventRecorder
from gitopsguard.cluster.impersonation import ServiceAccount, account_for
from gitopsguard.cluster.inventory import CONTROLLER_NAMESPACE, InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.collector import Collector
from gitopsguard.commands.result_events import broke_glass, mark_denied_objects, mark_review
from gitopsguard.commands.review import ReviewOptions, audit_entries, reviewer_for
from gitopsguard.commands.secrets import secret
from gitopsguard.commands.unit_lease import holding_unit
from gitopsguard.errors import SourceError
from gitopsguard.fleet_pool import DEFAULT_WORKERS
from gitopsguard.model import Action
from gitopsguard.plan.prune import BrakePolicy
from gitopsguard.policy import DenyLevel
from gitopsguard.policy.podsecurity import Exemptions
from gitopsguard.reconcile import Reconciler, ReconcileResult, Unit
from gitopsguard.render.settings import RenderSettings
from gitopsguard.render.stored import RenderStore
from gitopsguard.source import Credentials, GitSource, SourceSpec, display_url

# The `run` loop's parts (its servers, threads and notifiers) live in commands/run_loop.py, which imports from
# here, never the other way, and imports them where the loop starts them: a one-off pass, a process per pass in
# a CronJob or CI, then imports about 160 modules fewer (6-7 MB, 0.1-0.3 s of CPU;
# tests/unit/test_one_off_pass_imports.py).

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")


@dataclass(frozen=True)
class ReconcileOptions:
    """What `gitopsguard reconcile` was asked to do (its command-line options)."""

    repo: str
    branch: str
    path: str
    unit: str | None
    namespace: str
    kubeconfig: Path | None
    context: str | None
    workdir: Path | None
    allow_rewind: bool
    allow_mass_prune: bool
    audit_log: Path | None = None
    audit_stdout: bool = False  # every record also to standard output as a JSON line (needs audit_anchor)
    audit_anchor: bool = False  # chain onto the head anchored in gitopsguard-system, with the other replicas
    backup_git_url: str = ""  # back up to this repository (its own credential) instead of backup_dir
    backup_git_branch: str = "gitopsguard-backups"
    report_only: bool = False
    backup_dir: Path | None = None
    deny_level: str = "LOW"
    policies_path: str = "policies"
    allow_remote_bases: bool = False
    review_mode: str = "off"
    trust: Path | None = None
    trust_from: str | None = None
    github_repo: str | None = None
    github_api_url: str = "https://api.github.com"
    break_glass: str = ""
    pod_security_exempt_users: tuple[str, ...] = ()
    pod_security_exempt_runtime_classes: tuple[str, ...] = ()
    pod_security_exempt_namespaces: tuple[str, ...] = ()
    ssh_known_hosts: Path | None = None
    service_account: str = ""  # NAMESPACE/NAME the unit's writes are sent as (impersonated)
    default_service_account: str = ""  # the operator's account for units that name none
    root: bool = False  # `run --root`: ``path`` is the root unit, and the Units it declares are served too
    unit_workers: int = DEFAULT_WORKERS  # `run --root`: how many independent Units are passed at once
    unit_interval: timedelta = timedelta(minutes=5)  # `run --root`: the interval of a Unit whose spec names none

    def __post_init__(self) -> None:
        check_choice(self.audit_log, stdout=self.audit_stdout, anchored=self.audit_anchor)

    def acting_as(self) -> ServiceAccount | None:
        """The service account this unit's apply, dry run and prune act as; None: gitopsguard's own."""
        return account_for(self.service_account, self.default_service_account, where="--service-account")

    def exemptions(self) -> Exemptions:
        users, classes = self.pod_security_exempt_users, self.pod_security_exempt_runtime_classes
        return Exemptions(frozenset(users), frozenset(classes), frozenset(self.pod_security_exempt_namespaces))


def run_once(o: ReconcileOptions) -> int:
    acting_as = o.acting_as()  # a name that is not an account's is refused before anything is sent
    unit, source, api = build_parts(o)
    applier = Applier(api, acting_as=acting_as)
    applier.confirm_acting_as(unit.name)
    # One pass, then the process ends: no cycle collection in the pass, nor one over all it left before
    # its result is printed. The unit's Lease is held for it: never a pass beside a controller's.
    with holding_unit(api, unit.name), Collector().passes():
        reconciler = Reconciler(
            source, applier, InventoryStore(api), brake=BrakePolicy(released=o.allow_mass_prune),
            allow_rewind=o.allow_rewind, break_glass=o.break_glass,
            # a cron run renders each commit once (the store on disk), and this process renders once (no memo)
            stored=RenderStore(source.workdir / "renders", unit.render_settings, memo=False),
        )  # fmt: skip
        result = reported(reconciler.reconcile(unit))
        print_result(result)
        events = EventRecorder(RawApi(api), unit=unit.name)
        log = audit_log(o, api)
        if o.break_glass:
            broke_glass(log, events, result, o.break_glass)
        record(log, result)
        mark_denied_objects(applier, events, result)
        mark_review(events, result)
    if result.error:
        return 2
    return 1 if result.brake else 0


def reported(result: ReconcileResult) -> ReconcileResult:
    """The result as the reports read it (console, audit, Events): the policy verdicts without the mutated
    manifests they were reached on, which nothing after the pass reads. Held to the end of a one-off command,
    they kept every rendered body and its prepared form alive while the audit records were written, the
    command's peak (about 6 MB at 5,000 objects, bench/README.md "Memory")."""
    if result.evaluation is None:
        return result
    return replace(result, evaluation=replace(result.evaluation, manifests=()))


def audit_log(o: ReconcileOptions, api: client.ApiClient, count: Callable[[int], None] = lambda _: None) -> AuditLog:
    """The audit log as the operator chose it: a file, standard output, the anchor in the cluster."""
    anchor = AnchorStore(RawApi(api, timeout=10)) if o.audit_anchor else None
    return open_log(o.audit_log or default_audit_log(), anchor=anchor, stdout=o.audit_stdout, count=count)


def build_parts(o: ReconcileOptions) -> tuple[Unit, GitSource, client.ApiClient]:
    if o.namespace == CONTROLLER_NAMESPACE:
        raise SourceError(f"--namespace {CONTROLLER_NAMESPACE}: the controller's own namespace cannot receive a "
                          "unit's objects (its configuration and state live there); use another")  # fmt: skip
    name = checked_unit_name(o.unit, f"--unit {o.unit}") if o.unit else unit_name_for(o.path)
    # scp-like addresses (user@host:path, also with a password before the @) are remote, never local paths
    url = o.repo if "://" in o.repo or re.match(r"^[^/@\s]+@[\w.-]+:", o.repo) else Path(o.repo).resolve().as_uri()
    credentials = Credentials(
        token=git_token(),
        ssh_key_file=Path(k) if (k := os.environ.get("GITOPSGUARD_GIT_SSH_KEY")) else None,
        known_hosts=o.ssh_known_hosts,
    )
    workdir = o.workdir or default_workdir(url, o.branch)
    github = None
    if o.review_mode == "github":
        from gitopsguard.commands.grants import github_token  # the grant keeper's module: only when asked for

        github = github_token()
    review = ReviewOptions(o.review_mode, o.trust, o.trust_from, o.branch, o.github_repo, o.github_api_url, github)
    source = GitSource(SourceSpec(url, o.branch), workdir, credentials, reviewer_for(review, workdir / "review"))
    backups = backups_for(o, source) or o.backup_dir or default_audit_log().parent / "backups"
    unit = Unit(name, o.path, o.namespace, o.report_only, backups, o.policies_path or None, DenyLevel(o.deny_level),
                RenderSettings(allow_remote_bases=o.allow_remote_bases), o.exemptions())  # fmt: skip
    return unit, source, connect(o.kubeconfig, o.context)


def backups_for(o: ReconcileOptions, source: GitSource) -> GitBackups | None:
    """The backup repository, when one is configured: never the source's branch, nor with its credential."""
    if not o.backup_git_url:
        return None
    key = os.environ.get("GITOPSGUARD_BACKUP_GIT_SSH_KEY")
    credentials = Credentials(secret("GITOPSGUARD_BACKUP_GIT_TOKEN", "backup git token"), Path(key) if key else None)
    spec = GitBackupSpec(o.backup_git_url, o.backup_git_branch, credentials)
    refuse_source(spec, source.spec.url, source.spec.branch, source.credentials)
    return GitBackups(spec, source.workdir / "backup-repository")


def git_token() -> str | None:
    """An https token from $GITOPSGUARD_GIT_TOKEN, or from the file $GITOPSGUARD_GIT_TOKEN_FILE names."""
    return secret("GITOPSGUARD_GIT_TOKEN", "git token")


def record(log: AuditLog, result: ReconcileResult) -> None:
    """Append what the pass did to the audit log: each object's action, a brake, or the failure."""
    revision = result.revision or ""
    entries = records_for(result.unit, revision, result.changes)
    if result.brake:
        entries.append(("brake-engaged", result.unit, revision, f"unit/{result.unit}", result.brake))
    if result.evaluation is not None:
        for verdict in result.evaluation.results:
            for finding in verdict.findings:
                event = "policy-denied" if verdict.denied else "policy-finding"
                entries.append(
                    (
                        event,
                        result.unit,
                        revision,
                        str(verdict.key),
                        f"{finding.code} {finding.severity.value} {finding.message} (policy {finding.policy})",
                    )
                )
    entries += audit_entries(result.unit, revision, result.review.summary() if result.review else "", result.unreviewed)
    if result.error:
        entries.append(("reconcile-failed", result.unit, revision, f"unit/{result.unit}", result.error))
    log.append(entries)


def default_audit_log() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "gitopsguard" / "audit.jsonl"


def unit_name_for(path: str) -> str:
    name = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "root"
    if not _DNS_LABEL.match(name):
        raise SourceError(f"{path}: cannot derive a unit name from this path; give one with --unit")
    return checked_unit_name(name, f"{path}: the unit name derived from this path")


# the Units loop's Leases in gitopsguard-system (cluster/shardleases.py): a unit leads Lease gitopsguard-UNIT
_LOOP_LEASES = ("shard-", "replica-")


def checked_unit_name(name: str, where: str) -> str:
    """``name``, unless its Lease would be one of the Units loop's (a unit leading shard 0 holds that shard's
    Units; a unit named like a replica's membership is counted as a replica): SourceError naming ``where``."""
    if name.startswith(_LOOP_LEASES):
        raise SourceError(f"{where}: {name}: its Lease {CONTROLLER_NAMESPACE}/gitopsguard-{name} would be one of the "
                          "Units loop's shard Leases; give the unit another name with --unit")  # fmt: skip
    return name


def default_workdir(url: str, branch: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    shown = display_url(url)  # a hash of a password in a path could be guessed offline
    return Path(base) / "gitopsguard" / "sources" / hashlib.sha256(f"{shown}#{branch}".encode()).hexdigest()[:16]


def print_result(result: ReconcileResult) -> None:
    for change in result.changes:
        if change.action is not Action.UNCHANGED:
            click.echo(str(change))
    counts = Counter(change.action.value for change in result.changes)
    summary = ", ".join(f"{n} {action}" for action, n in sorted(counts.items())) or "no objects"
    click.echo(f"unit {result.unit} at {(result.revision or '?')[:12]}: {summary}")
    if result.brake:
        click.echo(
            f"mass-prune brake engaged: {result.brake}. Nothing was deleted. Release it with "
            "--allow-mass-prune, or put [gitopsguard: allow-mass-prune] in the commit message.",
            err=True,
        )
    if result.error:
        click.echo(f"error: {result.error}\nThe cluster keeps its last good state.", err=True)
