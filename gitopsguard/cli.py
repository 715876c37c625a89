"""The ``gitopsguard`` command line. It only parses options, calls one stage and prints what it returns.

Each command group's options and help live in a module of its own under ``gitopsguard/commands/`` (``cli_*.py``);
this module is the entry point (``gitopsguard.cli:main``) that gathers them. Each command imports what it needs
when it runs (``commands/cli_shared.py``)."""

from __future__ import annotations

import click

from gitopsguard import __version__, malloc
from gitopsguard.commands.cli_access import grants_group, request_command
from gitopsguard.commands.cli_apply import diff_command, reconcile_command, verify_range_command
from gitopsguard.commands.cli_audit import audit
from gitopsguard.commands.cli_cluster import cluster_info, demo, dev_cluster
from gitopsguard.commands.cli_policy import check_command, scan_command
from gitopsguard.commands.cli_run import run_command
from gitopsguard.commands.cli_run import slack_settings as slack_settings  # where the tests have found it
from gitopsguard.commands.cli_shared import reconcile_options as reconcile_options
from gitopsguard.commands.cli_shared import reports_errors as reports_errors
from gitopsguard.commands.cli_shared import unit_options as unit_options
from gitopsguard.commands.cli_shared import unit_store as unit_store
from gitopsguard.commands.cli_units import get_group, resume_group, status_command, suspend_group


@click.group()
@click.version_option(__version__, prog_name="gitopsguard")
def main() -> None:
    """gitopsguard keeps a Kubernetes cluster in step with one Git repository, safely."""
    malloc.bound_arenas()  # before any command starts a thread (gitopsguard/malloc.py)


for _command in (dev_cluster, cluster_info, demo, reconcile_command, check_command, diff_command,
                 verify_range_command, run_command, request_command, scan_command, status_command, grants_group,
                 audit, get_group, suspend_group, resume_group):  # fmt: skip
    main.add_command(_command)
