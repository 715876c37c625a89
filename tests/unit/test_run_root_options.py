"""`run --root` (the Units loop) against `--path` (one unit): the operator's flags are refused when they mix,
before anything connects (no cluster here)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from gitopsguard.cli import main


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["run", "--repo", "r", "--path", "a", "--root", "b"], "give either --path DIR (one unit) or --root DIR"),
        (["run", "--repo", "r"], "give either --path DIR (one unit) or --root DIR"),
        (["run", "--repo", "r", "--path", "a", "--shards", "4"], "--shards N spreads the Units of --root"),
        (["run", "--repo", "r", "--root", "a", "--shards", "4", "--leader-elect"], "and not --leader-elect"),
        (["run", "--repo", "r", "--root", "a", "--default-unit-interval", "5 minutes"], "is not a duration like 5m"),
        (["run", "--repo", "r", "--root", "a", "--default-unit-interval", "1s"], "from 10s to 7d"),
        (["reconcile", "--repo", "r"], "give --path DIR"),
        (["diff", "--repo", "r"], "give --path DIR"),
    ],
)
def test_mixed_or_missing_unit_flags_are_refused_before_anything_runs(args: list[str], said: str) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert said in result.output, result.output
