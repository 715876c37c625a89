"""``check --root`` on whatever a contributor can put in the root path's Unit specs: it never crashes, and no
Unit disappears from its report (each Unit object gets one verdict, passed or refused), so a green check
always means every Unit was judged.

The specs are any values in any of a Unit's fields and a few unknown ones (text in any script, huge numbers,
lists where mappings belong, glob characters, ``..``, absolute paths), over a checkout of real files."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.commands.check_units import check_units
from gitopsguard.policy import DenyLevel

FIELDS = ("path", "interval", "dependsOn", "serviceAccountName", "suspend", "reportOnly", "prune", "wait", "timeout",
          "policiesPath", "targetNamespace", "dependOn")  # fmt: skip
NOW = datetime(2026, 12, 5, tzinfo=UTC)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30), st.floats(allow_nan=False),
    st.text(max_size=40), st.sampled_from(["a", "a/../b", "/etc", "*", "a/[b]", "folder", "5m", "u1", "policies",
                                           "root", "gitopsguard-system", ".", "a//b/"]),
)  # fmt: skip
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["name", "namespace", "enabled", "cel", "x"]), inner, max_size=3), max_leaves=8)  # fmt: skip
specs = st.lists(st.dictionaries(st.sampled_from(FIELDS), values, max_size=5), min_size=1, max_size=4)


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    where = Path(tempfile.mkdtemp(prefix="gitopsguard-hostile-units-"))
    yield where
    shutil.rmtree(where)


def checkout(under: Path, units: list[dict[str, Any]]) -> Path:
    top = Path(tempfile.mkdtemp(dir=under))
    for folder in ("root", "folder", "policies"):
        (top / folder).mkdir()
    (top / "folder" / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: team}\n")
    documents = [{"apiVersion": "gitopsguard.io/v1alpha1", "kind": "Unit", "spec": spec,
                  "metadata": {"name": f"u{i}", "namespace": "team"}} for i, spec in enumerate(units)]  # fmt: skip
    (top / "root" / "units.yaml").write_text(yaml.safe_dump_all(documents, allow_unicode=True))
    return top


@given(units=specs)
@example(units=[{"path": "folder", "dependsOn": [{"name": "u0"}]}])  # itself: refused, never a loop
@example(units=[{"path": "folder"}, {"path": "folder"}])  # one folder, two Units
@example(units=[{"path": "folder", "interval": 10**30}])  # a number past any duration
@example(units=[{"path": "folder", "policiesPath": "root"}])  # the root path as a team's policies
@example(units=[{"path": "folder", "dependsOn": [{"name": "ghost"}]}, {"path": "a", "dependsOn": [{"name": "u0"}]}])
@example(units=[{"path": "folder", "dependsOn": [{"name": "u1"}]}, {"path": "a", "dependsOn": [{"name": "u0"}]}])
def test_every_unit_object_gets_one_verdict_whatever_its_spec_holds(workdir: Path, units: list[dict[str, Any]]) -> None:
    top = checkout(workdir, units)
    result = check_units(top, "root", policies_path="policies", deny_level=DenyLevel.LOW, now=NOW)
    assert not result.root.refused, result.root.message
    subjects = [v.subject for v in result.units]
    assert sorted(subjects) == sorted(f"Unit/team/u{i}" for i in range(len(units))), subjects
    for verdict in result.units:
        assert verdict.refused == bool(verdict.message) or verdict.evaluation is not None
