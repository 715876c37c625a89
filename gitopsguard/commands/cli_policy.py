"""``gitopsguard check`` and ``scan``: policies over manifests offline, and over live workloads."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gitopsguard.commands.cli_shared import reports_errors
from gitopsguard.policy.model import DenyLevel
from gitopsguard.policy.packs import PACKS


@click.command("check")
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


@click.command("scan")
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
