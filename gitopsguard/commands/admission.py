"""``gitopsguard run --admission-address``: the admission webhooks beside the loop, on every replica."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

import click
from kubernetes import client

from gitopsguard.admission.applied import AppliedPolicies
from gitopsguard.admission.configurations import FailurePolicy, WebhookSettings
from gitopsguard.admission.record import AdmissionMetrics, AdmissionRecorder
from gitopsguard.admission.review import BREAK_GLASS, PodSecurity, Verdict, describe
from gitopsguard.admission.serve import namespace_cache, start_admission, watched_namespaces
from gitopsguard.admission.server import DEFAULT
from gitopsguard.audit import AuditLog
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.events import EventRecorder
from gitopsguard.cluster.incluster import token_user
from gitopsguard.cluster.inventory import CONTROLLER_NAMESPACE, InventoryStore
from gitopsguard.cluster.namespaces import NamespaceView
from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import AdmissionError
from gitopsguard.notify import Notice, Notifications
from gitopsguard.notify.metrics import Metrics
from gitopsguard.reconcile import Unit
from gitopsguard.scan.following import InventoryHeads, UnitsFollower
from gitopsguard.scan.governed import Governed
from gitopsguard.source import GitSource
from gitopsguard.units.spec import UnitDefaults


def parse_address(address: str) -> tuple[str, int]:
    """HOST:PORT (":8443" for every interface) as a bind address; AdmissionError when it is not one."""
    host, _, port = address.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise AdmissionError(f"--admission-address {address}: give HOST:PORT, such as 0.0.0.0:8443 or 127.0.0.1:9443")
    return host or "0.0.0.0", int(port)  # noqa: S104  (":8443" asks for every interface, as in a Pod)


@dataclass(frozen=True)
class AdmissionOptions:
    """`gitopsguard run --admission-address`: where to serve, how the API server reaches it, failure policy."""

    address: str
    url: str = ""
    failure_policy: str = "Fail"
    namespace_label: str = ""  # KEY=VALUE: only namespaces with this label are judged (a staged roll-out)
    client_ca: str = ""  # PEM: serve only clients with a certificate it signed (the API server)
    client_names: tuple[str, ...] = ()  # ... whose CN or a DNS SAN is one of these, when given


def _who_may_call(options: AdmissionOptions) -> str:
    if not options.client_ca:
        return ("no --admission-client-ca: anyone who reaches the port can post reviews, recorded under the user "
                "they name")  # fmt: skip
    names = f" named {', '.join(options.client_names)}" if options.client_names else ""
    return f"only clients with a certificate from the --admission-client-ca{names}"


def notice_for(verdict: Verdict) -> Notice:
    """The Slack notice for a denied request or a break-glass switch, to the namespace's team."""
    request = verdict.request
    user = request.username or "?"
    if verdict.break_glass:
        turned = "off" if verdict.break_glass == "on" else "on"
        return Notice("admission-break-glass", request.subject, request.name, f"{user} turned admission {turned} "
                      f"in namespace {request.name}.", f"label {BREAK_GLASS}", "Check that this was intended.",
                      f"break-glass|{request.subject}|{request.uid}")  # fmt: skip
    codes = ", ".join(sorted({f"{f.code} ({f.policy})" for f in verdict.denying}))
    why = "\n".join(describe(f, "FAIL") for f in verdict.denying[:20]) or verdict.reason
    return Notice("admission-denied", request.subject, request.namespace,
                  f"{user} was refused {request.operation} of {request.subject}.", why,
                  "Fix the object, or add a PolicyException to the repository.",
                  f"admission-denied|{request.subject}|{user}|{codes or verdict.reason[:100]}")  # fmt: skip


def _warner() -> Callable[[str], None]:
    said: set[str] = set()

    def warn(message: str) -> None:
        if message not in said and len(said) < 1000:  # once per distinct problem, not every 10 s
            said.add(message)
            click.echo(f"warning: {message}", err=True)

    return warn


def follow_applied(
    api: client.ApiClient, unit: Unit, source: GitSource, stop: threading.Event, *,
    units_of_root: UnitDefaults | None = None,
) -> AppliedPolicies:  # fmt: skip
    """The policies this replica's admission and live scan judge by, followed from the inventories into a clone
    of its own; with ``units_of_root`` (``run --root``), every Unit's own too, served here or not."""
    warn = _warner()
    follower = GitSource(source.spec, source.workdir.with_name("admission"), source.credentials)
    units, heads = None, None
    if units_of_root is not None:
        units = UnitsFollower(unit, follower, Governed(), defaults=units_of_root, on_error=warn)
        heads = InventoryHeads()
        heads.start(lambda: Applier(api), RawApi(api), stop)
    applied = AppliedPolicies(unit.deny_level, units=units)
    applied.follow(InventoryStore(api), follower, unit.name, unit.policies_path, stop, on_error=warn, heads=heads)
    return applied


def serve_admission(
    api: client.ApiClient, unit: Unit, source: GitSource, options: AdmissionOptions, *, log: AuditLog,
    metrics: Metrics, stop: threading.Event, pod_security: PodSecurity | None = None,
    news: Notifications | None = None, applied: AppliedPolicies | None = None,
) -> AppliedPolicies:  # fmt: skip
    """Start the webhooks; returns the holder the loop offers each applied revision's policies to (``applied``
    when given: ``follow_applied``'s)."""
    bind, url, failure_policy = parse_address(options.address), options.url, options.failure_policy
    if applied is None:
        applied = follow_applied(api, unit, source, stop)
    events = EventRecorder(RawApi(api))
    announce = (lambda verdict: news.send([notice_for(verdict)])) if news is not None else None
    recorder = AdmissionRecorder(log, lambda body, reason, message: events.record(body, reason, message),
                                 AdmissionMetrics(metrics.registry), announce)  # fmt: skip
    key, _, value = options.namespace_label.partition("=")
    scope = ({"key": key, "operator": "In", "values": [value]},) if key else ()
    settings = WebhookSettings(url=url, namespace=CONTROLLER_NAMESPACE, failure_policy=FailurePolicy(failure_policy),
                               also_match=scope)  # fmt: skip
    # pod_security: the seam for namespace Pod Security labels (admission/review.py), connected at merge
    served = replace(DEFAULT, client_ca=options.client_ca, client_names=frozenset(options.client_names))
    raw = RawApi(api, timeout=10)
    namespaces = NamespaceView(Applier(api), RawApi(api))  # a label change counts at once, not within 5 s
    namespaces.start(stop)
    admission = start_admission(raw, bind, settings, applied.get, recorder, stop, pod_security=pod_security,
                                me=token_user(api.configuration), server_settings=served,
                                namespaces=watched_namespaces(namespaces, namespace_cache(raw)))  # fmt: skip
    reached = url or f"Service {CONTROLLER_NAMESPACE}/gitopsguard-webhook"
    click.echo(f"admission webhooks on https://{bind[0]}:{admission.server.server_port} (the API server calls "
               f"{reached}; failurePolicy {failure_policy}; {_who_may_call(options)})", err=True)  # fmt: skip
    return applied
