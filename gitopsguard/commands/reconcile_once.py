"""``gitopsguard reconcile``: one pass over one unit, printed as one line per object."""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click
from kubernetes import client

from gitopsguard.audit import AuditLog, records_for
from gitopsguard.audit.anchor import AnchorStore
from gitopsguard.audit.durable import check_choice, open_log
from gitopsguard.backup import storage
from gitopsguard.backup.gitrepo import GitBackups, GitBackupSpec, refuse_source
from gitopsguard.cluster import connect, retries
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.configmaps import ensure_namespace
from gitopsguard.cluster.events import EventRecorder
from gitopsguard.cluster.impersonation import ServiceAccount, account_for
from gitopsguard.cluster.inventory import CONTROLLER_NAMESPACE, InventoryStore
from gitopsguard.cluster.rest import RawApi, Request
from gitopsguard.collector import Collector
from gitopsguard.commands.review import ReviewOptions, audit_entries, mark, reviewer_for
from gitopsguard.commands.secrets import secret
from gitopsguard.commands.unit_lease import holding_unit
from gitopsguard.errors import ClusterError, GitOpsGuardError, SourceError, UnreachableError
from gitopsguard.fleet_pool import DEFAULT_WORKERS
from gitopsguard.grants.model import DEFAULT_KEEPER
from gitopsguard.model import Action, Reason
from gitopsguard.plan.prune import BrakePolicy
from gitopsguard.policy import DenyLevel
from gitopsguard.policy.podsecurity import Exemptions
from gitopsguard.reconcile import Reconciler, ReconcileResult, Unit
from gitopsguard.render.settings import RenderSettings
from gitopsguard.render.stored import RenderStore
from gitopsguard.source import Credentials, GitSource, SourceSpec, display_url
from gitopsguard.source.review import OFF_NOTE
from gitopsguard.units.spec import UnitDefaults

# The `run` loop's parts (its servers, threads and notifiers) are imported where the loop starts them: a one-off
# pass, a process per pass in a CronJob or CI, then imports about 160 modules fewer (6-7 MB, 0.1-0.3 s of CPU).
if TYPE_CHECKING:
    from gitopsguard.cluster.lease import LeaderElector
    from gitopsguard.commands.admission import AdmissionOptions
    from gitopsguard.commands.grants import GitHubSettings
    from gitopsguard.fleet import Fleet
    from gitopsguard.grants.keeper import Transition
    from gitopsguard.notify import Notifications
    from gitopsguard.notify.health import Health
    from gitopsguard.notify.metrics import Metrics
    from gitopsguard.notify.slack import Failure, SlackSettings
    from gitopsguard.policy import PolicySet
    from gitopsguard.policy.compose import Governance

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


def run_forever(
    o: ReconcileOptions, interval: float, stop: threading.Event, *, live_scan: bool = True,
    scan_namespaces: Sequence[str] = (), trust: Path | None = None, github: GitHubSettings | None = None,
    slack: SlackSettings | None = None, metrics_address: str = "", leader_elect: bool = False,
    apiserver_audit_log: Path | None = None, admission: AdmissionOptions | None = None,
    grants_keeper: str = DEFAULT_KEEPER, shards: int = 0,
) -> None:  # fmt: skip
    """Reconcile continuously until ``stop``; passes in which nothing happened print nothing. The live scan
    runs beside it under the policies of the last applied revision, and the grant keeper when configured.
    Everything they report reaches the console, the audit log, Slack and the metrics. A background thread
    that dies ends the process (``lifeline``)."""
    from gitopsguard import lifeline
    from gitopsguard.admission.podsecurity import pod_security_seam
    from gitopsguard.cluster.audittrail import AuditTrail
    from gitopsguard.commands.admission import follow_applied, serve_admission
    from gitopsguard.commands.grants import start_keeper
    from gitopsguard.commands.scan import SCAN_UNIT, start_scanner
    from gitopsguard.controller import Controller
    from gitopsguard.notify.health import Health
    from gitopsguard.notify.metrics import Metrics, readiness

    lifeline.install()
    # a name that is not an account's is refused before anything starts; a root unit acts as gitopsguard itself
    acting_as = None if o.root else o.acting_as()
    metrics, health = Metrics(), Health()
    if metrics_address:  # first: the probes are answered while everything below connects, or waits to lead
        serve_health(metrics_address, metrics, health)
    unit, source, api = build_parts(o)
    log = audit_log(o, api, metrics.audit.inc)
    news = notifications(api, slack, log, metrics)
    applied = None
    if o.root and (admission is not None or live_scan):  # every Unit's own policies, on every replica
        applied = follow_applied(api, unit, source, stop, units_of_root=UnitDefaults(o.unit_interval))
    if admission is not None:  # before the election: every replica serves admission, not only the leader
        seam = pod_security_seam(unit.pod_security_exemptions, cluster_pod_security(api))
        applied = serve_admission(api, unit, source, admission, log=log, metrics=metrics, stop=stop, news=news,
                                  pod_security=seam, applied=applied)  # fmt: skip
        # a server thread that dies ends the process; a replica not judging yet would deny every request
        health.serving_admission(lambda: not stop.is_set(), judging=lambda: applied is not None and applied.judging())
    lost = threading.Event()
    leases = None
    if shards:  # `run --root --shards N`: this replica serves the Units of the shards it holds, and no other
        from gitopsguard.cluster.shardleases import ShardLeases, ShardTiming, shard_api

        if not _namespace_ready(RawApi(api), stop):
            return
        leases = ShardLeases(shard_api(api, ShardTiming()), shards)
        leases.start(stop)
        click.echo(f"serving the Units of the shards it holds, of {shards}, as {leases.me}", err=True)
    if leader_elect:
        health.standby(unit.name)
    elector = lead(api, unit.name, stop, lost) if leader_elect else None
    if leader_elect and elector is None:
        return
    # one connection pool for every unit's Events: a pool per Unit cost about 0.1 MiB each (its TLS context,
    # sessions and connection), 100 MiB for 1,000 Units (bench/README.md, "1,000 Units")
    applier, events_raw = Applier(api, acting_as=acting_as), RawApi(api)
    events = EventRecorder(events_raw, unit=unit.name)
    applier.confirm_acting_as(unit.name)  # a controller that may not act as the unit's account says so at once
    last_failure: dict[str, tuple[str | None, str | None]] = {}  # per unit (run --root reports many)
    recorders = {unit.name: events}

    def report(result: ReconcileResult) -> None:
        events = recorders.get(result.unit) or recorders.setdefault(
            result.unit, EventRecorder(events_raw, unit=result.unit)
        )
        metrics.on_result(result, controller.last_duration)
        # admission judges by the root's policies from the next request: a Unit's add its own (docs/units.md),
        # which must never judge another team's requests
        offered = result.policies if result.unit == unit.name and not result.error else None
        if applied is not None and offered is not None and result.revision:
            applied.offer(offered, result.revision)
        acted = any(c.action is not Action.UNCHANGED for c in result.changes)
        failure = (result.revision, result.error)
        if result.error and failure == last_failure.get(result.unit) and not acted:
            return  # the same commit failing the same way again (retries, wake-ups): said once already
        last_failure[result.unit] = failure if result.error else (None, None)
        if result.error or result.brake or acted:
            print_result(result)
            record(log, result)
            mark_denied_objects(applier, events, result)
            mark_review(events, result)
            mark_changes(events, result)
            news.on_result(result)

    local = Path(o.repo) if Path(o.repo).is_dir() else None
    brake = BrakePolicy(released=o.allow_mass_prune)
    controller: Controller | Fleet
    governing: Callable[[], PolicySet | Governance | None]
    # fmt: off
    if o.root:
        from gitopsguard.fleet import Fleet, accounts  # the Units loop: imported only to run it (1 MB, 12 modules)

        fleet = Fleet(unit, source, applier, InventoryStore(api), RawApi(api), interval=interval, on_result=report,
                      brake=brake, defaults=UnitDefaults(o.unit_interval),
                      on_note=lambda note: click.echo(note, err=True), leases=leases,
                      account_of=accounts(applier, o.default_service_account), workers=o.unit_workers,
                      governed=applied.units.governed if applied is not None and applied.units is not None else None)
        controller, governing = fleet, fleet.governance
    else:
        single = Controller(unit, source, applier, InventoryStore(api), RawApi(api), interval=interval,
                            on_result=report, brake=brake,
                            trail=AuditTrail(apiserver_audit_log) if apiserver_audit_log else None)
        controller, governing = single, lambda: single.policies
    # fmt: on
    served = " and the Units it declares" if o.root else ""
    click.echo(f"reconciling {o.path} of {display_url(o.repo)} ({o.branch}) as unit {unit.name}{served}; Ctrl-C "
               "stops", err=True)  # fmt: skip
    if live_scan and unit.policies_path:
        backups = storage(unit.backup_dir or default_audit_log().parent / "backups").under(SCAN_UNIT)
        if applied is not None and applied.units is not None:  # every Unit's, served by this replica or not
            governing = applied.governance
        start_scanner(api, governing, backup_dir=backups, namespaces=scan_namespaces, log=log,
                      stop=stop, also=news.on_announcements, observe=metrics.on_findings, unit=unit.name)  # fmt: skip
    if trust is not None:
        workdir = (o.workdir or default_workdir(source.spec.url, source.spec.branch)).with_name("grants")
        grants_source = GitSource(source.spec, workdir, source.credentials)

        def granted(transitions: list[Transition]) -> None:
            news.on_transitions(transitions)
            metrics.on_transitions(transitions)

        start_keeper(api, grants_source, trust, workdir / "state", log, stop, interval=min(interval, 30.0),
                     github=github, also=granted, watch=metrics.watch_grants, keeper_name=grants_keeper)  # fmt: skip
    health.leading(unit.name, readiness(metrics, interval, reachable(api)))
    controller.run(stop, local_repository=local)
    if leases is not None:
        leases.release_all()  # after the passes: the others take the shards at once, not after the lease
    if elector is not None and not lost.is_set():
        elector.release()
    if lost.is_set():
        raise ClusterError(f"unit {unit.name}: lost the leader lease; stopped so that another replica acts alone")


def serve_health(address: str, metrics: Metrics, health: Health) -> None:
    """/metrics, /healthz and /readyz at HOST:PORT (":9402": every interface, as in a Pod), in a thread."""
    from gitopsguard.notify.metrics import serve

    host, _, port = address.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise click.UsageError(f"--metrics-address {address}: give HOST:PORT, such as :9402 or 127.0.0.1:9402")
    bind = host or "0.0.0.0"  # noqa: S104  (":9402" asks for every interface, as in a Pod)
    try:
        server = serve((bind, int(port)), metrics, health.ready, live=health.live)
    except OSError as error:
        raise click.UsageError(
            f"--metrics-address {address}: cannot listen there ({error.strerror or error}); "
            "stop what holds the port (`ss -ltnp`) or choose another address"
        ) from error
    click.echo(f"metrics and health on http://{bind}:{server.server_port}/metrics", err=True)


def lead(api: client.ApiClient, unit: str, stop: threading.Event, lost: threading.Event) -> LeaderElector | None:
    """Wait to lead this unit (a Lease in gitopsguard-system), then keep the lease; on losing it, stop."""
    from gitopsguard.cluster.lease import LeaderElector

    if not _namespace_ready(RawApi(api), stop):
        return None
    # no retries and a short timeout: a renewal held past the lease's expiry would let two replicas act
    elector = LeaderElector(RawApi(api, timeout=5, retry=retries.ONCE), CONTROLLER_NAMESPACE, f"gitopsguard-{unit}")
    click.echo(
        f"waiting to lead unit {unit} as {elector.me} (Lease {CONTROLLER_NAMESPACE}/gitopsguard-{unit})", err=True
    )
    if not elector.wait_for_leadership(stop):
        return None
    click.echo(f"leading unit {unit} as {elector.me}", err=True)

    def on_loss() -> None:
        lost.set()
        stop.set()

    elector.keep(stop, on_loss)
    return elector


def _namespace_ready(raw: RawApi, stop: threading.Event) -> bool:
    """gitopsguard-system exists (made if need be). An API server that is away is waited for, live and not
    ready, as the lease is; a refusal (RBAC) ends the process with its message."""
    said = False
    while not stop.is_set():
        try:
            ensure_namespace(raw, CONTROLLER_NAMESPACE)
            return True
        except ClusterError as error:
            if not error.retryable:
                raise
            if not said:
                click.echo(f"waiting for the API server: {error}", err=True)
                said = True
            stop.wait(1.0)
    return False


def audit_log(o: ReconcileOptions, api: client.ApiClient, count: Callable[[int], None] = lambda _: None) -> AuditLog:
    """The audit log as the operator chose it: a file, standard output, the anchor in the cluster."""
    anchor = AnchorStore(RawApi(api, timeout=10)) if o.audit_anchor else None
    return open_log(o.audit_log or default_audit_log(), anchor=anchor, stdout=o.audit_stdout, count=count)


def reachable(api: client.ApiClient) -> Callable[[], bool]:
    """Whether the API server answers its own /readyz; asked at most every 5 s."""
    raw, last = RawApi(api, timeout=3), [0.0, False]

    def check() -> bool:
        if time.monotonic() - float(last[0]) > 5:
            try:
                # its answer is text ("ok"), not an object: read the status alone; anything but 200 is "not ready"
                last[1] = raw.send_all([Request("GET", "/readyz", {}, None)], 1)[0].status == 200
            except GitOpsGuardError:
                last[1] = False
            last[0] = time.monotonic()
        return bool(last[1])

    return check


def notifications(api: client.ApiClient, slack: SlackSettings | None, log: AuditLog, metrics: Metrics) -> Notifications:
    """Slack when configured (failures go to stderr, the audit log and a metric, never blocking)."""
    from gitopsguard.cluster.secrets import SecretData
    from gitopsguard.notify import Notifications
    from gitopsguard.notify.slack import SlackNotifier, TeamWebhooks

    if slack is None:
        return Notifications(lambda _: None)

    def failed(failure: Failure) -> None:
        metrics.notify_failures.labels(failure.destination).inc()
        click.echo(f"warning: {failure}", err=True)
        log.append([("notify-failed", "notify", "", f"slack/{failure.destination}", str(failure))])

    def dropped(destination: str, count: int) -> None:
        metrics.notify_dropped.labels(destination).inc(count)

    teams = TeamWebhooks(SecretData(RawApi(api, timeout=10)))  # a slow API server delays that team's thread only
    notifier = SlackNotifier(slack, team_webhook=teams, on_failure=failed, on_drop=dropped)
    return Notifications(notifier.notify)


_EVENTS = {  # reason -> (Event reason, warning); the Event's message is the change's own words
    Reason.DRIFTED: ("DriftRepaired", False),
    Reason.PRUNED: ("Pruned", False),
    Reason.UNMANAGED_DELETED: ("DeletedUnmanaged", True),
    Reason.ROLLED_BACK: ("RolledBack", False),
}


def mark_changes(events: EventRecorder, result: ReconcileResult) -> None:
    """`DriftRepaired`, `Pruned`, `DeletedUnmanaged` and `RolledBack` Events on the objects concerned, by
    reference (a deleted object is gone; the Event names it by its apiVersion, kind and name)."""
    for change in result.changes:
        event = _EVENTS.get(change.reason)
        if event is None or change.action is Action.SKIPPED or change.action is Action.FAILED:
            continue
        key = change.key
        body = {"apiVersion": change.api_version, "kind": key.kind,
                "metadata": {"name": key.name, "namespace": key.namespace or "default"}}  # fmt: skip
        why = f"left Git at {(result.revision or '')[:12]}" if change.reason is Reason.PRUNED else change.detail
        events.record(body, event[0], why, warning=event[1])


def mark_denied_objects(applier: Applier, events: EventRecorder, result: ReconcileResult) -> None:
    """A `PolicyViolation` Event on each live object a blocked revision would have changed."""
    if result.evaluation is None or not result.error:
        return
    for verdict in result.evaluation.blocked:
        try:
            live = applier.raw.get(applier.object_path(verdict.api_version, verdict.key), str(verdict.key))
        except UnreachableError:
            return
        except ClusterError:  # absent, or not ours to read: nothing to mark
            continue
        except GitOpsGuardError:
            return
        if live:
            codes = ", ".join(sorted({f"{f.code} ({f.policy})" for f in result.evaluation.blocking(verdict)}))
            revision = (result.revision or "")[:12]
            events.record(
                live,
                "PolicyViolation",
                f"revision {revision} was not applied: its version of this object is denied by {codes}",
            )


def mark_review(events: EventRecorder, result: ReconcileResult) -> None:
    """An Event on the unit when a head is refused as unreviewed, and when one is applied without review."""
    if result.unreviewed is not None:
        refused = result.unreviewed
        mark(events, result.unit, "UnreviewedRevision", f"revision {refused.head[:12]} not applied: commit "
             f"{refused.commit[:12]} ({refused.who}) was not reviewed: " + "; ".join(refused.problems[:5]))  # fmt: skip
    elif result.review is not None and result.review.note == OFF_NOTE:
        mark(events, result.unit, "UnreviewedRevisionApplied", f"revision {(result.revision or '')[:12]} applied "
             "without review (--review-mode off)")  # fmt: skip


def broke_glass(log: AuditLog, events: EventRecorder, result: ReconcileResult, reason: str) -> None:
    """Break glass is loud: the audit log, an Event on the unit, and the console."""
    revision = result.revision or ""
    log.append([("break-glass", result.unit, revision, f"unit/{result.unit}", f"review skipped: {reason}")])
    mark(events, result.unit, "BreakGlass", f"revision {revision[:12]} applied without review: {reason}")
    click.echo(f"BREAK GLASS: unit {result.unit} at {revision[:12]} was applied without review ({reason}); this "
               "is in the audit log and an Event. The next pass verifies from it again.", err=True)  # fmt: skip


def cluster_pod_security(api: client.ApiClient) -> int | None:
    """The cluster's 1.x release when it has Pod Security Admission of its own (1.23 and later), so that ours
    evaluates `latest` and newer versions as its does; None on older clusters, where ours is the only one."""
    try:
        version = RawApi(api, timeout=10).get("/version")
        minor = int("".join(c for c in str(version.get("minor") or "") if c.isdigit())[:3] or "0")
    except (GitOpsGuardError, ValueError):
        return None
    return minor if minor >= 23 else None


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
