"""``gitopsguard run``: the loop's composition. Its health server first, then the audit log, notifications,
admission and the leader lease (or the shards' leases) around the controller or the Units loop, with the live
scan and the grant keeper beside it.

Only ``run`` imports this module (``commands/cli_run.py``, when it starts the loop); a one-off
``gitopsguard reconcile`` never does (``reconcile_once.py`` imports nothing from here). The loop's servers,
threads and notifiers are imported where they start, so ``run`` over one unit imports none of the Units loop
(``tests/integration/test_run_imports.py``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click
from kubernetes import client

from gitopsguard.audit import AuditLog
from gitopsguard.backup import storage
from gitopsguard.cluster import retries
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.configmaps import ensure_namespace
from gitopsguard.cluster.events import EventRecorder
from gitopsguard.cluster.inventory import CONTROLLER_NAMESPACE, InventoryStore
from gitopsguard.cluster.rest import RawApi, Request
from gitopsguard.commands.reconcile_once import (
    ReconcileOptions,
    audit_log,
    build_parts,
    default_audit_log,
    default_workdir,
    print_result,
    record,
)
from gitopsguard.commands.result_events import mark_changes, mark_denied_objects, mark_review
from gitopsguard.errors import ClusterError, GitOpsGuardError
from gitopsguard.grants.model import DEFAULT_KEEPER
from gitopsguard.model import Action
from gitopsguard.plan.prune import BrakePolicy
from gitopsguard.reconcile import ReconcileResult
from gitopsguard.source import GitSource, display_url
from gitopsguard.units.spec import UnitDefaults

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


def cluster_pod_security(api: client.ApiClient) -> int | None:
    """The cluster's 1.x release when it has Pod Security Admission of its own (1.23 and later), so that ours
    evaluates `latest` and newer versions as its does; None on older clusters, where ours is the only one."""
    try:
        version = RawApi(api, timeout=10).get("/version")
        minor = int("".join(c for c in str(version.get("minor") or "") if c.isdigit())[:3] or "0")
    except (GitOpsGuardError, ValueError):
        return None
    return minor if minor >= 23 else None
