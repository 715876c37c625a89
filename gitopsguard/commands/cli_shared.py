"""What the ``gitopsguard`` commands share: errors shown as one message, and the option sets several take."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from gitopsguard.errors import GitOpsGuardError
from gitopsguard.policy.model import DenyLevel
from gitopsguard.source.review import ReviewMode

# Each command imports what it needs when it runs: `gitopsguard check` in a pull request's CI should not
# pay 0.4 s to import the Kubernetes client it never uses.

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
