"""What a one-off `gitopsguard reconcile` imports. A CronJob or a CI job starts a process per pass, so every
module it imports is paid on every pass; the `run` loop's servers and threads (admission, Slack, metrics,
the grant keeper, the live scan, the lease) are no part of a pass: they were about 160 modules, 6-7 MB of
RSS and 0.1-0.3 s of CPU of each one-off process (bench/README.md, "No regression from issue 18")."""

from __future__ import annotations

import json
import subprocess
import sys

# not cluster.lease: a one-off pass holds its unit's Lease (commands/unit_lease.py)
LOOP_ONLY = (
    "gitopsguard.fleet",
    "gitopsguard.cluster.shardleases",
    "gitopsguard.admission.serve",
    "gitopsguard.commands.admission",
    "gitopsguard.commands.grants",
    "gitopsguard.commands.run_loop",  # the loop's composition: it imports reconcile_once, never the reverse
    "gitopsguard.commands.scan",
    "gitopsguard.controller",
    "gitopsguard.grants.keeper",
    "gitopsguard.notify.slack",
    "gitopsguard.notify.metrics",
    "gitopsguard.scan.scanner",
    "slack_sdk",
    "prometheus_client",
)


def imported_by(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after ``statement``."""
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    return set(json.loads(done.stdout))


def test_the_one_off_reconcile_command_imports_none_of_the_run_loops_servers() -> None:
    modules = imported_by("import gitopsguard.cli\nfrom gitopsguard.commands.reconcile_once import run_once")
    assert "gitopsguard.commands.reconcile_once" in modules
    assert sorted(set(LOOP_ONLY) & modules) == []
