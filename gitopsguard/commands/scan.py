"""The live scan from the command line: `gitopsguard scan` alone, or inside `gitopsguard run`.

Every announcement is printed once and recorded in the audit log.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import click
from kubernetes import client

from gitopsguard.audit import AuditLog
from gitopsguard.backup import Backups
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.rest import RawApi
from gitopsguard.policy import PolicySet
from gitopsguard.policy.compose import Governance
from gitopsguard.policy.live import Outcome
from gitopsguard.scan.judged import Announcement
from gitopsguard.scan.scanner import Scanner

SCAN_UNIT = "live-scan"


def describe(announcement: Announcement) -> str:
    """One line for people: what, which object, why, and what happens next."""
    verdict = announcement.verdict
    codes = ", ".join(sorted({f"{f.code} {f.severity.value} ({f.policy}): {f.message}" for f in verdict.findings}))
    if announcement.event == "violation":
        if verdict.outcome in (Outcome.SCHEDULED, Outcome.DELETE) and verdict.deadline is not None:
            then = f"; will be deleted at {verdict.deadline:%Y-%m-%dT%H:%M:%SZ} unless fixed"
        else:
            then = f"; {announcement.detail}" if announcement.detail else ""
        return f"{announcement.key} non-compliant: {codes}{then}"
    if announcement.event == "deleted":
        return f"{announcement.key} deleted after its grace period ({announcement.detail}); it was: {codes}"
    if announcement.event == "resolved":
        return f"{announcement.key} is compliant again"
    return f"{announcement.key} could not be deleted: {announcement.detail}"


def announcer(log: AuditLog) -> Callable[[list[Announcement]], None]:
    """Print each announcement and record a round of them in the audit log with one write."""

    def announce(announcements: list[Announcement]) -> None:
        entries = []
        for announcement in announcements:
            line = describe(announcement)
            click.echo(f"live scan: {line}")
            entries.append((f"live-{announcement.event}", SCAN_UNIT, "", str(announcement.key), line))
        log.append(entries)

    return announce


def start_scanner(
    api: client.ApiClient, policies: Callable[[], PolicySet | Governance | None], *, backup_dir: Path | Backups,
    namespaces: Sequence[str], log: AuditLog, stop: threading.Event,
    also: Callable[[list[Announcement]], None] = lambda _: None,
    observe: Callable[[list[tuple[str, str, str]]], None] = lambda _: None, unit: str = "",
) -> threading.Thread:  # fmt: skip
    """Run the live scan in a thread once ``policies`` gives a policy set (the first applied revision's), as
    ``unit``'s scan: its state and Events are that unit's own."""

    def scan() -> None:
        while (current := policies()) is None:
            if stop.wait(0.5):
                return
        record = announcer(log)

        def announce(announcements: list[Announcement]) -> None:
            record(announcements)
            also(announcements)

        scanner = Scanner(Applier(api), RawApi(api), current, backup_dir=backup_dir,
                          namespaces=frozenset(namespaces) or None, announce=announce, observe=observe,
                          warn=lambda problem: click.echo(f"live scan: warning: {problem}", err=True),
                          unit=unit)  # fmt: skip
        scanner.run(stop, policies=lambda: policies() or current)

    thread = threading.Thread(target=scan, name="live-scan", daemon=True)
    thread.start()
    return thread


def scan_once(
    api: client.ApiClient, policies: PolicySet, *, backup_dir: Path | Backups, namespaces: Sequence[str], log: AuditLog
) -> int:
    """One scan: evaluate every workload, act on deadlines already due. Exit 1 when anything is non-compliant."""
    scanner = Scanner(Applier(api), RawApi(api), policies, backup_dir=backup_dir,
                      namespaces=frozenset(namespaces) or None, announce=announcer(log))  # fmt: skip
    scanner.scan_all()
    scanner.tick()
    scanner.flush()
    scanner.drain()
    for problem in scanner.problems:
        click.echo(f"warning: {problem}", err=True)
    click.echo(f"live scan: {scanner.evaluations} workloads evaluated, {scanner.non_compliant} non-compliant")
    return 1 if scanner.non_compliant else 0
