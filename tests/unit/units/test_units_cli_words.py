"""The Unit commands' words: `reconcile unit NAME` beside `reconcile --repo ... --path ...`, and the table of
`get units` with hostile text in a Unit's status."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from gitopsguard.cli import main
from gitopsguard.cluster.units import LiveUnit
from gitopsguard.commands.units import table

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def test_reconcile_with_options_is_still_the_one_off_pass(tmp_path: Path) -> None:
    """`--path unit` is an option's value, not the word `unit`: the one-off pass reads its options (and stops at
    the first it refuses)."""
    result = CliRunner().invoke(main, ["reconcile", "--repo", str(tmp_path / "none"), "--path", "unit",
                                       "--workdir", str(tmp_path / "w"), "--audit-log", "-"])  # fmt: skip
    assert result.exit_code == 2 and result.output.startswith("error: --audit-log -: "), result.output


def test_reconcile_unit_needs_a_name_and_a_namespace() -> None:
    result = CliRunner().invoke(main, ["reconcile", "unit"])
    assert result.exit_code == 2 and "Usage: main reconcile unit [OPTIONS] NAME" in result.output
    assert "Missing option '-n' / '--namespace'" in CliRunner().invoke(main, ["reconcile", "unit", "apps"]).output


def test_reconcile_unit_refuses_a_timeout_that_is_no_duration_before_touching_a_cluster() -> None:
    result = CliRunner().invoke(main, ["reconcile", "unit", "apps", "-n", "a", "--timeout", "soon",
                                       "--kubeconfig", "/nonexistent"])  # fmt: skip
    assert result.exit_code == 2 and "'soon' is not a duration like 90s or 2m" in result.output


def test_the_reconcile_help_names_both_forms() -> None:
    shown = CliRunner().invoke(main, ["reconcile", "--help"]).output
    assert "--repo" in shown and "reconcile unit NAME -n NS" in shown


def live(name: str, status: Mapping[str, object], created: str = "2026-12-05T10:00:00Z") -> LiveUnit:
    metadata = {"name": name, "namespace": "team-a", "creationTimestamp": created}
    return LiveUnit.of({"metadata": metadata, "spec": {"path": "teams/a"}, "status": status})


def test_hostile_status_text_cannot_forge_a_row_or_move_the_cursor() -> None:
    hostile = {"conditions": [{"type": "Ready", "status": "False", "reason": "X",
                               "message": "boom\nforged   True   ok\x1b[2J\u2028" + "x" * 500}]}  # fmt: skip
    shown = table((live("apps", hostile), live("db", {"conditions": "Ready"})), NOW, all_namespaces=False)
    lines = shown.splitlines()
    assert len(lines) == 3 and "\x1b" not in shown and "\u2028" not in shown and "\\n" in lines[1]
    assert max(len(line) for line in lines) < 200  # the message is cut
    assert lines[2].split()[:3] == ["db", "Unknown", "-"]  # a status that is no list of conditions: nothing known


def test_ages_read_as_kubectl_shows_them() -> None:
    ages = [table((live("a", {}, created),), NOW, all_namespaces=False).split()[-1]
            for created in ("2026-12-05T11:59:15Z", "2026-12-05T11:48:00Z", "2026-12-05T07:00:00Z",
                            "2026-12-01T12:00:00Z", "yesterday")]  # fmt: skip
    assert ages == ["45s", "12m", "5h", "4d", "-"]
