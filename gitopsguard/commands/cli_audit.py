"""``gitopsguard audit``: read and check the hash-chained audit log."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gitopsguard.commands.cli_shared import reports_errors
from gitopsguard.errors import GitOpsGuardError

if TYPE_CHECKING:  # only for types: each command imports what it needs when it runs
    from gitopsguard.audit import AuditLog


@click.group("audit")
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
