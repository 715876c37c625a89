"""``gitopsguard request`` and ``grants``: temporary access asked for and granted by pull request."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gitopsguard.commands.cli_shared import reports_errors


@click.command("request")
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


@click.group("grants", invoke_without_command=True)
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
