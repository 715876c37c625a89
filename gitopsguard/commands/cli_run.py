"""``gitopsguard run``: the controller, continuously (one unit, or the root of Units)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import click

from gitopsguard.commands.cli_shared import reconcile_options, reports_errors
from gitopsguard.fleet_pool import DEFAULT_WORKERS as DEFAULT_UNIT_WORKERS


@click.command("run")
@reconcile_options
@click.option(
    "--root",
    "root",
    default=None,
    help="Serve Units: reconcile this directory of the repository as the "
    "root unit, then each Unit it declares (docs/units.md), as `flux bootstrap` does. Excludes --path.",
)
@click.option(
    "--shards",
    type=click.IntRange(0, 1024),
    default=0,
    show_default=True,
    help="With --root: spread the "
    "Units over the replicas by N shard Leases (gitopsguard-system/gitopsguard-shard-<k>), the same N on "
    "every replica; 0: one replica serves all (with --leader-elect, the leader).",
)
@click.option("--default-unit-interval", default="5m", show_default=True, help="The interval of a Unit whose spec "
              "names none (a duration like 5m).")  # fmt: skip
@click.option("--unit-workers", type=click.IntRange(1, 64), default=DEFAULT_UNIT_WORKERS, show_default=True,
              help="With --root: how many independent Units are passed at once (a Unit still starts only after "
              "the Units it depends on); 1 passes them one at a time, in order.")  # fmt: skip
@click.option("--interval", default=30.0, show_default=True, help="Seconds between fetches; changes to owned "
              "objects and to a local repository wake it at once.")  # fmt: skip
@click.option(
    "--approval-mode",
    type=click.Choice(["off", "signed-merge", "github"]),
    default="off",
    show_default=True,
    help="Keep temporary-access grants from access/: identities from SSH signatures "
    "(signed-merge) or from the pull request on GitHub (github).",
)
@click.option(
    "--grants-keeper",
    default="gitopsguard-grants",
    show_default=True,
    help="This process's grant keeper: it marks the bindings it makes with this name, sweeps only those, and "
    "keeps its state in the ConfigMap of this name. Give each `run` that keeps grants a name of its own.",
)
@click.option(
    "--slack-channel",
    default=None,
    help="Post news to this channel (token in $GITOPSGUARD_SLACK_TOKEN "
    "or the file $GITOPSGUARD_SLACK_TOKEN_FILE names); an incoming webhook in $GITOPSGUARD_SLACK_WEBHOOK works "
    "too. A namespace's Secret gitopsguard-slack (key webhook-url) adds its team's webhook.",
)
@click.option("--slack-api-url", default="https://slack.com/api/", show_default=True, help="Slack Web API base URL.")
@click.option(
    "--team-webhook-host",
    "team_webhook_hosts",
    multiple=True,
    default=("hooks.slack.com",),
    show_default=True,
    help="A host a team's webhook (Secret gitopsguard-slack) may name (repeatable); it must also be https.",
)
@click.option(
    "--team-webhook-allow-private",
    is_flag=True,
    help="Let team webhooks reach loopback, private and link-local addresses (an in-cluster or air-gapped "
    "Slack); by default such an address is refused, so a tenant cannot make gitopsguard call inside the cluster.",
)
@click.option(
    "--metrics-address",
    default="127.0.0.1:9402",
    show_default=True,
    help='Serve /metrics, /healthz and /readyz here (HOST:PORT; "" turns it off).',
)
@click.option(
    "--leader-elect",
    is_flag=True,
    help="Run as one of several replicas: only the holder of the unit's "
    "Lease (gitopsguard-system/gitopsguard-<unit>) acts; another takes over within 15 s.",
)
@click.option(
    "--live-scan/--no-live-scan",
    default=True,
    show_default=True,
    help="Scan live workloads with the repository's policies (report, announce, delete after grace).",
)
@click.option(
    "--scan-namespace",
    "scan_namespaces",
    multiple=True,
    help="Scan only these namespaces (repeatable; default: all but kube-system and gitopsguard-system).",
)
@click.option(
    "--apiserver-audit-log",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The API server's audit log (JSON lines) to name the user behind each drift; `gitopsguard "
    "dev-cluster up --audit-log` writes one.",
)
@click.option(
    "--admission-address",
    default="",
    help="Serve the validating and mutating admission webhooks over HTTPS here (HOST:PORT; off by default). "
    "Every replica serves; the configurations, certificate Secret and caBundle are kept by gitopsguard.",
)
@click.option(
    "--admission-url",
    default="",
    help="The https URL the API server calls the webhooks at (for a cluster that reaches gitopsguard by URL, "
    "such as the dev cluster on loopback); default: the gitopsguard-webhook Service in gitopsguard-system.",
)
@click.option(
    "--admission-failure-policy",
    type=click.Choice(["Fail", "Ignore"]),
    default="Fail",
    show_default=True,
    help="What the API server does when the webhooks cannot answer: Fail denies (fail closed), Ignore admits.",
)
@click.option(
    "--admission-namespace-label",
    default="",
    help="KEY=VALUE: judge only namespaces carrying this label (a staged roll-out); default: every namespace "
    "but gitopsguard-system, kube-system and those with break glass (gitopsguard.io/admission=disabled).",
)
@click.option(
    "--admission-client-ca",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="PEM CA that signed the API server's client certificate for webhooks (its --admission-control-config-"
    "file): the webhooks then serve only a client showing a certificate it signed. Without it, anyone who reaches "
    "the port can post reviews (see docs/threat-model.md).",
)
@click.option(
    "--admission-client-name",
    "admission_client_names",
    multiple=True,
    help="With --admission-client-ca: the client certificate's CN or a DNS SAN must be this (repeatable).",
)
@reports_errors
def run_command(
    interval: float, approval_mode: str, slack_channel: str | None, slack_api_url: str,
    team_webhook_hosts: tuple[str, ...], team_webhook_allow_private: bool, metrics_address: str, leader_elect: bool,
    live_scan: bool, scan_namespaces: tuple[str, ...], apiserver_audit_log: Path | None, admission_address: str,
    admission_url: str, admission_failure_policy: str, admission_namespace_label: str, grants_keeper: str,
    admission_client_ca: Path | None, admission_client_names: tuple[str, ...], root: str | None,
    default_unit_interval: str, shards: int, **options: Any,
) -> None:  # fmt: skip
    """Reconcile continuously: new commits, and drift repaired within seconds. Stop with Ctrl-C or SIGTERM.

    With --root PATH instead of --path: PATH is the root unit, and every Unit it declares is reconciled too."""
    from gitopsguard.admission.peers import read_client_ca
    from gitopsguard.commands.admission import AdmissionOptions
    from gitopsguard.commands.grants import GitHubSettings, github_token
    from gitopsguard.commands.reconcile_once import ReconcileOptions
    from gitopsguard.commands.run_loop import run_forever
    from gitopsguard.model import parse_duration
    from gitopsguard.units.spec import INTERVAL_RANGE

    if bool(root) == bool(options.get("path")):
        raise click.UsageError("give either --path DIR (one unit) or --root DIR (the root of Units), not both")
    unit_interval = parse_duration(default_unit_interval)
    if unit_interval is None or not INTERVAL_RANGE[0] <= unit_interval <= INTERVAL_RANGE[1]:
        raise click.BadParameter(f"{default_unit_interval!r} is not a duration like 5m, from 10s to 7d",
                                 param_hint="--default-unit-interval")  # fmt: skip
    if root and options.get("service_account"):
        raise click.UsageError("--service-account is for one unit (--path); with --root the root unit acts as "
                               "gitopsguard itself, and each Unit as its serviceAccountName or "
                               "--default-service-account")  # fmt: skip
    if root:
        options |= {"path": root, "root": True, "unit_interval": unit_interval}
    if shards and (not root or leader_elect):
        raise click.UsageError("--shards N spreads the Units of --root over replicas: give --root, and not "
                               "--leader-elect (the shard Leases decide who acts)")  # fmt: skip

    trust, github_repo, github_api_url = options["trust"], options["github_repo"], options["github_api_url"]
    if admission_url and not admission_address:
        raise click.UsageError("--admission-url needs --admission-address HOST:PORT (where to serve)")
    if admission_url and not admission_url.startswith("https://"):
        raise click.UsageError(f"--admission-url {admission_url}: the API server calls webhooks over https only")
    if admission_namespace_label and "=" not in admission_namespace_label:
        raise click.UsageError(f"--admission-namespace-label {admission_namespace_label}: give KEY=VALUE")
    if admission_client_names and admission_client_ca is None:
        raise click.UsageError("--admission-client-name needs --admission-client-ca FILE (who signed the name)")
    if admission_client_ca is not None and not admission_address:
        raise click.UsageError("--admission-client-ca needs --admission-address HOST:PORT (where to serve)")
    client_ca = read_client_ca(admission_client_ca) if admission_client_ca is not None else ""
    admission = AdmissionOptions(admission_address, admission_url, admission_failure_policy,
                                 admission_namespace_label, client_ca,
                                 admission_client_names) if admission_address else None  # fmt: skip
    if approval_mode != "off" and trust is None:
        raise click.UsageError(f"--approval-mode {approval_mode} needs --trust FILE (who is who)")
    github = None
    if approval_mode == "github":
        token = github_token()
        if not github_repo or not token:
            raise click.UsageError(
                "--approval-mode github needs --github-repo OWNER/NAME and a token in "
                "$GITOPSGUARD_GITHUB_TOKEN or the file $GITOPSGUARD_GITHUB_TOKEN_FILE names"
            )
        github = GitHubSettings(github_api_url, github_repo, token)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    run_forever(ReconcileOptions(**options), interval, stop, live_scan=live_scan, scan_namespaces=scan_namespaces,
                trust=trust if approval_mode != "off" else None, github=github,
                slack=slack_settings(slack_channel, slack_api_url, team_webhook_hosts, team_webhook_allow_private),
                metrics_address=metrics_address,
                leader_elect=leader_elect, apiserver_audit_log=apiserver_audit_log, admission=admission,
                grants_keeper=grants_keeper, shards=shards)  # fmt: skip


def slack_settings(
    channel: str | None, api_url: str, team_hosts: tuple[str, ...] = ("hooks.slack.com",), allow_private: bool = False
) -> Any:
    """Slack settings from the options and the environment, or None when Slack is not configured."""
    from gitopsguard.commands.secrets import secret
    from gitopsguard.notify.slack import OutboundPolicy, SlackSettings

    # The bot token only serves a channel: without one it is not read, so the shipped Deployment (its token file
    # from an optional Secret) starts with Slack off; with a channel a missing token file still stops the start.
    token = secret("GITOPSGUARD_SLACK_TOKEN", "Slack token") if channel else None
    webhook = secret("GITOPSGUARD_SLACK_WEBHOOK", "Slack webhook")
    if channel and not token:
        raise click.UsageError("--slack-channel needs a bot token in $GITOPSGUARD_SLACK_TOKEN(_FILE)")
    if not (channel and token) and not webhook:
        return None
    outbound = OutboundPolicy(frozenset(h.lower().rstrip(".") for h in team_hosts), allow_private)
    return SlackSettings(token, channel, webhook, api_url, outbound=outbound)
