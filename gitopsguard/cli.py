"""The ``gitopsguard`` command line. It only parses options, calls one stage and prints what it returns."""

from __future__ import annotations

import functools
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

from gitopsguard import __version__, malloc
from gitopsguard.errors import GitOpsGuardError
from gitopsguard.fleet_pool import DEFAULT_WORKERS as DEFAULT_UNIT_WORKERS
from gitopsguard.policy.model import DenyLevel
from gitopsguard.policy.packs import PACKS
from gitopsguard.source.review import ReviewMode

# Each command imports what it needs when it runs: `gitopsguard check` in a pull request's CI should not
# pay 0.4 s to import the Kubernetes client it never uses.
if TYPE_CHECKING:
    from gitopsguard.audit import AuditLog
    from gitopsguard.devcluster import ClusterStatus, DevCluster

P = ParamSpec("P")
R = TypeVar("R")


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Show a GitOpsGuardError as one clear message (no stack trace) and exit 2."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except GitOpsGuardError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(2)

    return wrapper


@click.group()
@click.version_option(__version__, prog_name="gitopsguard")
def main() -> None:
    """gitopsguard keeps a Kubernetes cluster in step with one Git repository, safely."""
    malloc.bound_arenas()  # before any command starts a thread (gitopsguard/malloc.py)


@main.group("dev-cluster")
@click.option("--state-dir", type=click.Path(path_type=Path), help="Where this cluster keeps its state.")
@click.option("--cache-dir", type=click.Path(path_type=Path), help="Where built Kubernetes binaries are cached.")
@click.pass_context
def dev_cluster(ctx: click.Context, state_dir: Path | None, cache_dir: Path | None) -> None:
    """A real local cluster: etcd, kube-apiserver, kube-controller-manager 1.20.2 and a node (as root)."""
    from gitopsguard.devcluster import CacheLayout, DevCluster, StateLayout
    from gitopsguard.devcluster.progress import StagedProgress

    state = StateLayout(state_dir) if state_dir else StateLayout.default()
    cache = CacheLayout(cache_dir) if cache_dir else CacheLayout.default()
    ctx.obj = DevCluster(state, cache, StagedProgress())


@dev_cluster.command("up")
@click.option("--port", type=int, default=None, help="kube-apiserver port (default: a free one).")
@click.option("--audit-log", is_flag=True, help="A new cluster's API server keeps an audit log of writes "
              "(logs/audit.log in its state dir); `run --apiserver-audit-log` reads it to name users.")  # fmt: skip
@click.option("--node/--no-node", default=True, show_default=True, help="A new cluster also runs a node "
              "(containerd, kubelet, kube-proxy, kube-scheduler) so Pods run; root only, one a machine.")  # fmt: skip
@click.pass_obj
@reports_errors
def dev_cluster_up(cluster: DevCluster, port: int | None, audit_log: bool, node: bool) -> None:
    """Start the cluster (building the binaries once), or restart whatever part of it has stopped."""
    result = cluster.up(apiserver_port=port, audit_log=audit_log, node=node)
    if result.already_up:
        click.echo(f"The dev cluster is already up at {result.server}; nothing was started.", err=True)
    elif result.recovered:
        click.echo(f"Recovered the dev cluster at {result.server}: restarted {', '.join(result.started)}.", err=True)
    else:
        click.echo(f"The dev cluster is up at {result.server}.", err=True)
    click.echo(cluster.env())


@dev_cluster.command("down")
@click.pass_obj
@reports_errors
def dev_cluster_down(cluster: DevCluster) -> None:
    """Stop every process the cluster started and remove its state."""
    stopped = cluster.down()
    click.echo(
        f"Stopped {', '.join(stopped)}; removed {cluster.state.root}." if stopped else "No dev cluster was running."
    )


@dev_cluster.command("status")
@click.pass_obj
@reports_errors
def dev_cluster_status(cluster: DevCluster) -> None:
    """Show each component and whether the API server is ready. Exits 1 unless all is up."""
    status = cluster.status()
    click.echo(_format_status(status, cluster.server_version() if status.ready else None))
    sys.exit(0 if status.all_running and status.ready and (status.node is None or status.node_ready) else 1)


@dev_cluster.command("env")
@click.pass_obj
@reports_errors
def dev_cluster_env(cluster: DevCluster) -> None:
    """Print the export line for the cluster's kubeconfig: eval $(gitopsguard dev-cluster env)."""
    click.echo(cluster.env())


@dev_cluster.command("image")
@click.argument("which", type=click.Choice(["gitopsguard", "demo-web"]), default="gitopsguard")
@click.option("--image-cache", type=click.Path(path_type=Path), default=None,
              help="Where the base, the archives and buildah's storage go (~/.cache/gitopsguard/images).")  # fmt: skip
@reports_errors
def dev_cluster_image(which: str, image_cache: Path | None) -> None:
    """Build gitopsguard's image (or the demo's web image) with buildah and print its OCI archive's path."""
    from gitopsguard.devcluster.base_image import ImageCache
    from gitopsguard.devcluster.image import build_image, demo_web_image, gitopsguard_image
    from gitopsguard.devcluster.progress import StagedProgress

    spec = gitopsguard_image() if which == "gitopsguard" else demo_web_image()
    cache = ImageCache(image_cache) if image_cache else ImageCache.default()
    click.echo(build_image(spec, cache, StagedProgress()))


def _format_status(status: ClusterStatus, version: str | None) -> str:
    if not status.exists:
        return "No dev cluster. Start one with: gitopsguard dev-cluster up"
    lines = [f"{c.name:<24} {c.state.value:<16} pid {c.pid if c.pid else '-'}" for c in status.components]
    server = status.ports.server_url() if status.ports else "?"
    lines.append(
        f"API server {server}: {'ready' if status.ready else 'NOT ready'}" + (f", {version}" if version else "")
    )
    if status.node is not None:
        lines.append(f"node {status.node}: {'Ready' if status.node_ready else 'NOT ready'}")
    if not (status.all_running and status.ready and (status.node is None or status.node_ready)):
        lines.append("Repair it with: gitopsguard dev-cluster up")
    lines.append(f"kubeconfig: {status.kubeconfig}")
    return "\n".join(lines)


@main.command("cluster-info")
@click.option("--kubeconfig", type=click.Path(path_type=Path), default=None, help="Default: $KUBECONFIG.")
@click.option("--context", default=None, help="kubeconfig context to use.")
@reports_errors
def cluster_info(kubeconfig: Path | None, context: str | None) -> None:
    """Print the API server's version and readiness (exit 1 when it is not ready)."""
    from gitopsguard.cluster import connect, server_info

    info = server_info(connect(kubeconfig, context))
    click.echo(f"server:  {info.server}\nversion: {info.version}\nready:   {'yes' if info.ready else 'no'}")
    if info.failing_checks:
        click.echo(f"failing readiness checks: {', '.join(info.failing_checks)}")
    sys.exit(0 if info.ready else 1)


@main.command("demo")
@click.option("--local", is_flag=True, help="The controller as a local process on a cluster without a node, "
              "instead of installed as Pods on the node (needs root).")  # fmt: skip
@click.option("--down", is_flag=True, help="Stop the demo (its git daemon) and take its cluster down.")
@reports_errors
def demo(local: bool, down: bool) -> None:
    """Install gitopsguard as Pods on the local dev cluster's node (kubectl apply -k manifests/), applying
    repo-template/'s dev overlay from a Git copy, and show what it does."""
    if down:
        from gitopsguard.commands.demo_incluster import stop_demo

        stopped = stop_demo()
        click.echo(f"Stopped {', '.join(stopped)}." if stopped else "No demo cluster was running.", err=True)
        return
    if local:
        from gitopsguard.commands.demo import run_demo

        sys.exit(run_demo())
    from gitopsguard.commands.demo_incluster_story import run_incluster_demo

    sys.exit(run_incluster_demo())


def reconcile_options(command: Callable[P, R]) -> Callable[P, R]:
    """The options shared by `reconcile` (one pass) and `run` (continuous)."""
    options = [
        click.option("--repo", required=True, help="Git URL (https, ssh, file) or a local repository path."),
        click.option("--branch", default="main", show_default=True),
        click.option("--path", "path", default=None, help="Directory in the repository to apply, e.g. clusters/dev "
                     "(required, except for `run --root`)."),
        click.option("--unit", default=None, help="Name of this unit (default: derived from --path)."),
        click.option("--namespace", default="default", show_default=True, help="For namespaced objects without one."),
        click.option("--kubeconfig", type=click.Path(path_type=Path), default=None, help="Default: $KUBECONFIG."),
        click.option("--context", default=None, help="kubeconfig context to use."),
        click.option("--workdir", type=click.Path(path_type=Path), default=None, help="Where the clone is kept."),
        click.option("--ssh-known-hosts", type=click.Path(path_type=Path, dir_okay=False), default=None,
                     envvar="GITOPSGUARD_SSH_KNOWN_HOSTS", help="git over ssh: the only host keys accepted (a "
                     "known_hosts file; ssh URLs need it). Hosts not in it, or with another key, are refused."),
        click.option("--allow-rewind", is_flag=True, help="Follow a force-pushed or rolled-back branch once."),
        click.option("--allow-mass-prune", is_flag=True, help="Release the mass-prune brake."),
        click.option("--allow-remote-bases", is_flag=True, help="Let kustomize load remote bases (https or git "
                     "URLs); without it a render reads only the commit. Local paths never leave the checkout."),
        click.option("--audit-log", type=click.Path(path_type=Path), default=None,
                     help="Default: ~/.local/state/gitopsguard/audit.jsonl; - for none (standard output alone, "
                     "with --audit-anchor)."),
        click.option("--audit-stdout", is_flag=True, help="Also write every audit record to standard output as "
                     "one JSON line, for the platform's log pipeline (needs --audit-anchor)."),
        click.option("--audit-anchor", is_flag=True, help="Anchor the audit chain's head in ConfigMap "
                     "gitopsguard-system/gitopsguard-audit-anchor: every replica extends one chain, a restart "
                     "continues it, and `audit verify --anchor cluster` checks any copy against it."),
        click.option("--report-only", is_flag=True, help="Report drift and pending prunes; change nothing."),
        click.option("--backup-dir", type=click.Path(path_type=Path), default=None,
                     help="Workloads are saved here before deletion (default: state dir/backups); a "
                     "PersistentVolumeClaim keeps them past the Pod."),
        click.option("--backup-git-url", default="", help="Back up workloads before deletion as commits to this "
                     "Git repository instead (one commit each), with a write credential of its own in "
                     "$GITOPSGUARD_BACKUP_GIT_TOKEN(_FILE) or $GITOPSGUARD_BACKUP_GIT_SSH_KEY; never the source's "
                     "branch or credential."),
        click.option("--backup-git-branch", default="gitopsguard-backups", show_default=True,
                     help="The branch of --backup-git-url the backups are committed to."),
        click.option("--deny-level", type=click.Choice([d.value for d in DenyLevel]), default="LOW",
                     show_default=True, help="Which severities block a revision: LOW blocks HIGH, MED blocks MED "
                     "and HIGH, HIGH blocks all, OFF blocks none."),
        click.option("--policies-path", default="policies", show_default=True,
                     help="The policy folder in the repository (\"\" to use none)."),
        click.option("--review-mode", type=click.Choice([m.value for m in ReviewMode]), default="off",
                     show_default=True, help="Apply only commits that came through review: merges signed by an "
                     "approver (signed-merge) or pull requests approved on GitHub (github), as the review rules in "
                     "--trust require. off applies whatever the branch holds, and warns."),
        click.option("--trust", type=click.Path(path_type=Path, dir_okay=False), default=None,
                     help="The operator's trust file: signing keys and GitHub logins mapped to users and groups, "
                     "and the review rules."),
        click.option("--trust-from", default=None, help="First sync only: the commit to verify from (audited); "
                     "without it the head must be an approved merge."),
        click.option("--github-repo", default=None, help="github mode: owner/name of the repository."),
        click.option("--github-api-url", default="https://api.github.com", show_default=True,
                     help="github mode: the REST API base URL (GitHub Enterprise: https://HOST/api/v3)."),
        click.option("--pod-security-exempt-user", "pod_security_exempt_users", multiple=True,
                     help="Pod Security labels do not apply to this user's requests (repeatable), as in Kubernetes' "
                     "PodSecurityConfiguration exemptions."),
        click.option("--pod-security-exempt-runtime-class", "pod_security_exempt_runtime_classes", multiple=True,
                     help="Pod Security labels do not apply to Pods of this runtime class (repeatable)."),
        click.option("--pod-security-exempt-namespace", "pod_security_exempt_namespaces", multiple=True,
                     help="Pod Security labels do not apply in this namespace (repeatable)."),
        click.option("--service-account", default="", metavar="NAMESPACE/NAME", help="Apply, dry-run and prune "
                     "this unit as this service account (impersonated): the API server confines the unit to what "
                     "the account may do. Default: --default-service-account."),
        click.option("--default-service-account", default="", metavar="NAMESPACE/NAME", help="The account for "
                     "units that name none; without either, a unit acts as gitopsguard's own account (a platform "
                     "unit)."),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


def unit_options(command: Callable[P, R]) -> Callable[P, R]:
    """The options of the commands that act on one Unit object: its name, namespace and the cluster."""
    for option in reversed(
        [
            click.argument("name"),
            click.option("-n", "--namespace", required=True, help="The Unit's namespace."),
            click.option("--kubeconfig", type=click.Path(path_type=Path), default=None, help="Default: $KUBECONFIG."),
            click.option("--context", default=None, help="kubeconfig context to use."),
        ]
    ):
        command = option(command)
    return command


def unit_store(kubeconfig: Path | None, context: str | None) -> Any:
    from gitopsguard.cluster import connect
    from gitopsguard.cluster.rest import RawApi
    from gitopsguard.cluster.units import UnitStore

    return UnitStore(RawApi(connect(kubeconfig, context)))


@click.command("unit")
@unit_options
@click.option("--timeout", default="2m", show_default=True, help="How long to wait for the controller: 90s, 2m.")
@reports_errors
def reconcile_unit_command(name: str, namespace: str, kubeconfig: Path | None, context: str | None,
                           timeout: str) -> None:  # fmt: skip
    """Ask the running controller to reconcile Unit NAME now, and wait for the result. Exit 0 Ready, 1 not
    Ready, 2 not served within --timeout (or another error)."""
    from gitopsguard.commands.units import print_served, reconcile_unit
    from gitopsguard.model import parse_duration

    wait = parse_duration(timeout)
    if wait is None or not wait.total_seconds():
        raise click.BadParameter(f"{timeout!r} is not a duration like 90s or 2m", param_hint="--timeout")
    served = reconcile_unit(unit_store(kubeconfig, context), namespace, name, wait)
    sys.exit(print_served(f"Unit/{namespace}/{name}", served))


class _ReconcileOrUnit(click.Command):
    """`reconcile --repo ... --path ...` (one pass, here) and `reconcile unit NAME` (a request to the running
    controller) share a name, as `flux reconcile` does; the second is told apart by its first word, which no
    option of the first can be."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:  # fmt: skip
        if args[:1] == ["unit"]:
            return reconcile_unit_command.make_context(f"{info_name} unit", args[1:], parent=parent, **extra)
        return super().make_context(info_name, args, parent=parent, **extra)


@main.command("reconcile", cls=_ReconcileOrUnit)
@reconcile_options
@click.option("--break-glass", default="", metavar="REASON", help="Apply the head without review, this pass "
              "only (audited and announced); later passes verify from it again.")  # fmt: skip
@reports_errors
def reconcile_command(**options: Any) -> None:
    """Make the cluster match one path of the repository, once. Exit 0 done, 1 brake engaged, 2 error.

    `gitopsguard reconcile unit NAME -n NS` instead asks the running controller to reconcile a Unit now."""
    from gitopsguard.commands.reconcile_once import ReconcileOptions, run_once

    _need_path(options)
    sys.exit(run_once(ReconcileOptions(**options)))


def _need_path(options: dict[str, Any]) -> None:
    if not options.get("path"):
        raise click.UsageError("give --path DIR: the directory of the repository to apply")


@main.command("check")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--root", "root", default=None, help="Check the checkout in the working directory laid out in Units "
              "(docs/units.md), as `run --root` serves it: this folder's Units, each folder gated by --policies "
              "(default: policies) and its own policiesPath. Instead of PATHS.")  # fmt: skip
@click.option(
    "--pack",
    "packs",
    multiple=True,
    type=click.Choice(PACKS),
    help="Turn on a built-in pack for every object (repeatable).",
)
@click.option(
    "--policies",
    type=click.Path(path_type=Path, file_okay=False),
    help="A folder of Policy and PolicyException files (usually policies/ in the repository).",
)
@click.option(
    "--deny-level",
    type=click.Choice([d.value for d in DenyLevel]),
    default="LOW",
    show_default=True,
    help="Which severities block: LOW blocks HIGH, MED blocks MED and HIGH, HIGH blocks all.",
)
@click.option(
    "--pss-version",
    help="The Kubernetes release (v1.0 ... or latest, the default) whose Pod Security Standards the pss-baseline "
    "and pss-restricted packs of --pack check.",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@reports_errors
def check_command(
    paths: tuple[Path, ...], root: str | None, packs: tuple[str, ...], policies: Path | None, deny_level: str,
    pss_version: str | None, fmt: str,
) -> None:  # fmt: skip
    """Check manifests against policies offline, as a pull request's CI does. Exit 0 allowed, 1 blocked, 2 error.

    Pods and pod templates in a Namespace the manifests define with pod-security.kubernetes.io labels are also
    checked as Kubernetes Pod Security Admission would: enforce blocks Pods, warn reports workloads.

    With --root DIR instead of PATHS: refuses what the Units loop would (docs/units.md), per Unit."""
    if root is None:
        if not paths:
            raise click.UsageError("give the PATHS to check, or --root DIR for a repository laid out in Units")
        from gitopsguard.commands.check import run_check

        sys.exit(run_check(paths, packs, policies, deny_level, fmt, pss_version=pss_version))
    if paths or packs or pss_version:
        raise click.UsageError("--root checks as the Units loop does, by the repository's policies alone (--policies "
                               "and each Unit's policiesPath; a pack goes in a policy file as builtin:): give no "
                               "PATHS, --pack or --pss-version with it")  # fmt: skip
    from gitopsguard.commands.check_units import run_check_root

    sys.exit(run_check_root(root, policies, deny_level, fmt, colour=sys.stdout.isatty()))


@main.command("diff")
@reconcile_options
@reports_errors
def diff_command(**options: Any) -> None:
    """Show what a reconcile would change (server dry run; Secret values masked). Exit 0 none, 1 changes, 2 error."""
    from gitopsguard.commands.diff import run_diff
    from gitopsguard.commands.reconcile_once import ReconcileOptions

    _need_path(options)
    sys.exit(run_diff(ReconcileOptions(**options)))


@main.command("verify-range")
@click.argument("old")
@click.argument("new")
@click.option(
    "--repo",
    type=click.Path(path_type=Path, file_okay=False),
    default=".",
    show_default=True,
    help="A local clone holding both commits.",
)
@click.option("--review-mode", type=click.Choice(["signed-merge", "github"]), default="signed-merge", show_default=True)
@click.option(
    "--trust",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The operator's trust file (signers and review rules).",
)
@click.option("--branch", default="main", show_default=True, help="github mode: the branch pull requests merge into.")
@click.option("--github-repo", default=None, help="github mode: owner/name of the repository.")
@click.option("--github-api-url", default="https://api.github.com", show_default=True)
@reports_errors
def verify_range_command(old: str, new: str, repo: Path, review_mode: str, trust: Path, branch: str,
                         github_repo: str | None, github_api_url: str) -> None:  # fmt: skip
    """Whether every commit from OLD to NEW came through review, offline (as a repository's CI runs it).
    OLD may be "" for a first sync (NEW must then be an approved merge). Exit 0 reviewed, 1 not, 2 error."""
    import tempfile

    from gitopsguard.commands.grants import github_token
    from gitopsguard.commands.review import ReviewOptions, verify_range

    token = github_token() if review_mode == "github" else None
    options = ReviewOptions(review_mode, trust, None, branch, github_repo, github_api_url, token)
    with tempfile.TemporaryDirectory(prefix="gitopsguard-verify-") as state:
        sys.exit(verify_range(repo, old, new, options, Path(state)))


@main.command("run")
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
    from gitopsguard.commands.reconcile_once import ReconcileOptions, run_forever
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


@main.command("request")
@click.option("--policy", required=True, help="The escalation policy to ask under.")
@click.option("--role", required=True, help="The Role or ClusterRole to be granted.")
@click.option("--role-kind", type=click.Choice(["ClusterRole", "Role"]), default="ClusterRole", show_default=True)
@click.option("--namespace", default="", help="Where (leave out for cluster-wide, if the policy allows it).")
@click.option("--for", "duration", required=True, help="How long: 30m, 2h, 1d (capped by the policy).")
@click.option("--reason", required=True, help="Why; reviewers read this.")
@click.option("--user", required=True, help="Your Kubernetes user name (the grant's subject).")
@click.option(
    "--repo-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=".",
    show_default=True,
    help="Your clone of the cluster repository.",
)
@click.option("--base", default="main", show_default=True, help="The tracked branch.")
@click.option(
    "--signing-key",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Sign the commit with this SSH key (signed-merge mode needs it).",
)
@click.option("--github-repo", default=None, help="owner/name: open the pull request through GitHub's API.")
@click.option("--github-api-url", default="https://api.github.com", show_default=True)
@reports_errors
def request_command(policy: str, role: str, role_kind: str, namespace: str, duration: str, reason: str, user: str,
                    repo_dir: Path, base: str, signing_key: Path | None, github_repo: str | None,
                    github_api_url: str) -> None:  # fmt: skip
    """Ask for temporary rights: a grant file on a new branch, committed, pushed, and a pull request opened."""
    from gitopsguard.commands.grants import github_token
    from gitopsguard.grants.request import Request, submit

    token = github_token()
    github = (github_api_url, github_repo, token) if github_repo and token else None
    where = submit(Request(user, policy, role, role_kind, namespace, duration, reason), repo_dir, base=base,
                   signing_key=signing_key, github=github)  # fmt: skip
    click.echo(f"Requested. Review and merge: {where}")


@main.command("scan")
@click.option(
    "--policies",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="A folder of Policy and PolicyException files.",
)
@click.option("--pack", "packs", multiple=True, type=click.Choice(PACKS), help="A built-in pack (repeatable).")
@click.option("--namespace", "namespaces", multiple=True, help="Only these namespaces (repeatable).")
@click.option("--kubeconfig", type=click.Path(path_type=Path), default=None, help="Default: $KUBECONFIG.")
@click.option("--context", default=None, help="kubeconfig context to use.")
@click.option(
    "--backup-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Workloads are saved here before deletion (default: state dir/backups/live-scan).",
)
@click.option("--audit-log", type=click.Path(path_type=Path), default=None)
@reports_errors
def scan_command(policies: Path | None, packs: tuple[str, ...], namespaces: tuple[str, ...],
                 kubeconfig: Path | None, context: str | None, backup_dir: Path | None,
                 audit_log: Path | None) -> None:  # fmt: skip
    """Scan live workloads once against policies. Exit 0 all compliant, 1 findings, 2 error."""
    from gitopsguard.audit import AuditLog
    from gitopsguard.cluster import connect
    from gitopsguard.commands.reconcile_once import default_audit_log
    from gitopsguard.commands.scan import scan_once
    from gitopsguard.policy import PolicySet, load_policies, pack_policy

    policy_set = load_policies(policies) if policies else PolicySet()
    policy_set = PolicySet(policy_set.policies + tuple(pack_policy(p) for p in packs), policy_set.exceptions,
                           policy_set.digest)  # fmt: skip
    log_path = audit_log or default_audit_log()
    backups = backup_dir or log_path.parent / "backups" / "live-scan"
    sys.exit(scan_once(connect(kubeconfig, context), policy_set, backup_dir=backups, namespaces=namespaces,
                       log=AuditLog(log_path)))  # fmt: skip


@main.command("status")
@click.option("--unit", default=None, help="Only this unit.")
@click.option("--kubeconfig", type=click.Path(path_type=Path), default=None, help="Default: $KUBECONFIG.")
@click.option("--context", default=None, help="kubeconfig context to use.")
@reports_errors
def status_command(unit: str | None, kubeconfig: Path | None, context: str | None) -> None:
    """Each unit's last applied and attempted commit, last changes and errors. Exit 1 if one is failing."""
    from gitopsguard.commands.status import show_status

    sys.exit(show_status(kubeconfig, context, unit))


@main.group("grants", invoke_without_command=True)
@click.option("--kubeconfig", type=click.Path(path_type=Path), default=None, help="Default: $KUBECONFIG.")
@click.option("--context", default=None, help="kubeconfig context to use.")
@click.pass_context
@reports_errors
def grants_group(ctx: click.Context, kubeconfig: Path | None, context: str | None) -> None:
    """Temporary access granted by pull request. Alone: list every grant (as `grants list`)."""
    if ctx.invoked_subcommand is None:
        from gitopsguard.cluster import connect
        from gitopsguard.commands.grants import list_grants

        sys.exit(list_grants(connect(kubeconfig, context)))


@grants_group.command("list")
@click.option("--kubeconfig", type=click.Path(path_type=Path), default=None, help="Default: $KUBECONFIG.")
@click.option("--context", default=None, help="kubeconfig context to use.")
@reports_errors
def grants_list(kubeconfig: Path | None, context: str | None) -> None:
    """Every grant seen: state, subject, role, scope, approver, start, expiry and time left."""
    from gitopsguard.cluster import connect
    from gitopsguard.commands.grants import list_grants

    sys.exit(list_grants(connect(kubeconfig, context)))


@grants_group.command("rbac")
@click.argument("repository", type=click.Path(path_type=Path, file_okay=False), default=".")
@reports_errors
def grants_rbac_command(repository: Path) -> None:
    """Print the grants account's RBAC: `bind` on exactly the roles access/policies/ names."""
    from gitopsguard.commands.grants import print_rbac

    sys.exit(print_rbac(repository))


@main.group("audit")
@click.option("--log", "log_path", type=click.Path(path_type=Path), default=None, help="The audit log file.")
@click.pass_context
def audit(ctx: click.Context, log_path: Path | None) -> None:
    """Read and check the hash-chained audit log."""
    from gitopsguard.audit import AuditLog
    from gitopsguard.commands.reconcile_once import default_audit_log

    ctx.obj = AuditLog(log_path or default_audit_log())


@audit.command("show")
@click.option("--unit", default=None)
@click.option("--event", default=None, help="created, configured, deleted, skipped, failed, brake-engaged, ...")
@click.option("--subject", default=None, help="Substring of the object, e.g. Deployment/shop/")
@click.pass_obj
@reports_errors
def audit_show(log: AuditLog, unit: str | None, event: str | None, subject: str | None) -> None:
    """Print matching records, oldest first (control characters and line separators shown as escapes)."""
    from gitopsguard.audit import printable

    for r in log.records():
        if (unit in (None, r.unit)) and (event in (None, r.event)) and (subject is None or subject in r.subject):
            detail = f"  {r.detail}" if r.detail else ""
            line = f"{r.seq:>6} {r.time} {r.unit} {r.revision[:12]} {r.event:<16} {r.subject}{detail}"
            click.echo(printable(line))


@audit.command("verify")
@click.argument("copies", nargs=-1, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--head", default=None, help="SEQ:HASH of the last record you saved elsewhere (catches truncation).")
@click.option("--anchor", "anchor_from", default=None, metavar="cluster|FILE", help="Check the copies against the "
              "chain's head: `cluster` reads ConfigMap gitopsguard-system/gitopsguard-audit-anchor (a copy must end "
              "exactly there), FILE is an anchor saved by `audit anchor` (a copy must reach it).")  # fmt: skip
@click.option(
    "--since",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="With COPIES or --anchor: "
    "the first record the copies must hold (a log pipeline keeps a window; earlier ones are not asked for).",
)
@click.option("--kubeconfig", type=click.Path(path_type=Path), default=None, help="With --anchor cluster.")
@click.option("--context", default=None, help="With --anchor cluster: the kubeconfig context.")
@click.pass_obj
@reports_errors
def audit_verify(log: AuditLog, copies: tuple[Path, ...], head: str | None, anchor_from: str | None, since: int,
                 kubeconfig: Path | None, context: str | None) -> None:  # fmt: skip
    """Check the hash chain of the log, or of COPIES taken together (files, or each replica's standard output as
    the log pipeline kept it) against the anchor. Exit 0 intact, 1 tampered."""
    from gitopsguard.audit.anchor import Head

    expected = None
    if head:
        try:
            expected = Head.parse(head, "--head")
        except GitOpsGuardError as error:
            raise click.BadParameter("expected SEQ:HASH as printed by a previous `audit verify`",
                                     param_hint="--head") from error  # fmt: skip
    if anchor_from is None and not copies:
        _verify_one(log, expected)
    from gitopsguard.audit.copies import verify_copies

    anchor, saved = _anchor_for(anchor_from, kubeconfig, context)
    paths = copies or (log.path,)
    result = verify_copies(paths, anchor=anchor, saved=saved or expected, since=since)
    for problem in result.problems:
        click.echo(problem)
    against = f" against the anchor at record {anchor.head.seq}" if anchor else ""
    against = f" against the saved anchor at record {saved.seq}" if saved else against
    click.echo(f"{', '.join(map(str, paths))}: {result.records} records{against}, "
               f"{'intact' if result.ok else 'TAMPERED'}")  # fmt: skip
    sys.exit(0 if result.ok else 1)


def _verify_one(log: AuditLog, expected: Any) -> None:
    result = log.verify((expected.seq, expected.hash) if expected else None)
    for problem in result.problems:
        click.echo(problem)
    last = list(log.records())[-1:] if result.ok else []
    head_text = f"; head {last[0].seq}:{last[0].hash}" if last else ""
    click.echo(f"{log.path}: {result.records} records, {'intact' if result.ok else 'TAMPERED'}{head_text}")
    sys.exit(0 if result.ok else 1)


def _anchor_for(anchor_from: str | None, kubeconfig: Path | None, context: str | None) -> tuple[Any, Any]:
    """(the cluster's anchor, a saved anchor's head): at most one of them."""
    from gitopsguard.audit.anchor import AnchorStore, load_saved

    if anchor_from is None:
        return None, None
    if anchor_from != "cluster":
        return None, load_saved(Path(anchor_from))
    from gitopsguard.cluster import connect
    from gitopsguard.cluster.rest import RawApi

    store = AnchorStore(RawApi(connect(kubeconfig, context)))
    anchor = store.read()
    if anchor is None:
        raise GitOpsGuardError(f"{store.where}: no anchor in this cluster; was the controller run with --audit-anchor?")
    return anchor, None


@audit.command("anchor")
@click.option("--kubeconfig", type=click.Path(path_type=Path), default=None, help="Default: $KUBECONFIG.")
@click.option("--context", default=None, help="kubeconfig context to use.")
@reports_errors
def audit_anchor(kubeconfig: Path | None, context: str | None) -> None:
    """Print the chain's head as anchored in the cluster, to save elsewhere (`audit verify --anchor FILE`)."""
    anchor, _ = _anchor_for("cluster", kubeconfig, context)
    click.echo(anchor.saved(), nl=False)


@main.group("get")
def get_group() -> None:
    """Show gitopsguard's objects in the cluster."""


@get_group.command("units")
@click.option("-n", "--namespace", default=None, help="Only this namespace (default: default).")
@click.option("-A", "--all-namespaces", is_flag=True, help="Units of every namespace.")
@click.option("--kubeconfig", type=click.Path(path_type=Path), default=None, help="Default: $KUBECONFIG.")
@click.option("--context", default=None, help="kubeconfig context to use.")
@reports_errors
def get_units_command(namespace: str | None, all_namespaces: bool, kubeconfig: Path | None,
                      context: str | None) -> None:  # fmt: skip
    """Each Unit: Ready, its status message, the applied revision, objects, suspended and age."""
    from datetime import UTC, datetime

    from gitopsguard.commands.units import table

    if namespace and all_namespaces:
        raise click.UsageError("give -n NAMESPACE or -A, not both")
    namespace = None if all_namespaces else namespace or "default"
    units = unit_store(kubeconfig, context).list(namespace)
    if not units:
        click.echo(f"No Units found{f' in namespace {namespace}' if namespace else ''}.")
        return
    click.echo(table(units, datetime.now(UTC), all_namespaces=all_namespaces))


@main.group("suspend")
def suspend_group() -> None:
    """Stop reconciling something until it is resumed."""


@suspend_group.command("unit")
@unit_options
@reports_errors
def suspend_unit_command(name: str, namespace: str, kubeconfig: Path | None, context: str | None) -> None:
    """Suspend Unit NAME: the controller changes nothing of it until `gitopsguard resume unit`."""
    from gitopsguard.commands.units import set_suspended

    click.echo(set_suspended(unit_store(kubeconfig, context), namespace, name, True))


@main.group("resume")
def resume_group() -> None:
    """Reconcile again what was suspended."""


@resume_group.command("unit")
@unit_options
@reports_errors
def resume_unit_command(name: str, namespace: str, kubeconfig: Path | None, context: str | None) -> None:
    """Resume Unit NAME: the controller reconciles it again."""
    from gitopsguard.commands.units import set_suspended

    click.echo(set_suspended(unit_store(kubeconfig, context), namespace, name, False))
