"""``gitopsguard reconcile``, ``diff`` and ``verify-range``: one pass over one path, what it would change, and
whether a range of commits came through review."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from gitopsguard.commands.cli_shared import reconcile_options, reports_errors
from gitopsguard.commands.cli_units import reconcile_unit_command


class _ReconcileOrUnit(click.Command):
    """`reconcile --repo ... --path ...` (one pass, here) and `reconcile unit NAME` (a request to the running
    controller) share a name, as `flux reconcile` does; the second is told apart by its first word, which no
    option of the first can be."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:  # fmt: skip
        if args[:1] == ["unit"]:
            return reconcile_unit_command.make_context(f"{info_name} unit", args[1:], parent=parent, **extra)
        return super().make_context(info_name, args, parent=parent, **extra)


@click.command("reconcile", cls=_ReconcileOrUnit)
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


@click.command("diff")
@reconcile_options
@reports_errors
def diff_command(**options: Any) -> None:
    """Show what a reconcile would change (server dry run; Secret values masked). Exit 0 none, 1 changes, 2 error."""
    from gitopsguard.commands.diff import run_diff
    from gitopsguard.commands.reconcile_once import ReconcileOptions

    _need_path(options)
    sys.exit(run_diff(ReconcileOptions(**options)))


@click.command("verify-range")
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
