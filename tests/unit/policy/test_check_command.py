"""`gitopsguard check`: exit codes and the stable JSON schema a pull request's CI reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gitopsguard.cli import main

PRIVILEGED = """apiVersion: v1
kind: Pod
metadata: {name: bad, namespace: team}
spec:
  containers:
  - name: app
    image: nginx
    securityContext: {privileged: true}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: fine, namespace: team}
"""


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "pod.yaml").write_text(PRIVILEGED)
    return tmp_path


def test_check_exits_1_and_reports_the_stable_json_schema_when_something_is_blocked(repo: Path) -> None:
    result = CliRunner().invoke(main, ["check", "apps", "--pack", "pss-baseline", "--format", "json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert report["schema"] == "gitopsguard.io/check/v1"
    assert report["summary"] == {"objects": 2, "denied": 1, "findings": 1}
    bad = report["objects"][0]
    assert {k: bad[k] for k in ("apiVersion", "kind", "namespace", "name", "file", "line", "verdict")} == {
        "apiVersion": "v1", "kind": "Pod", "namespace": "team", "name": "bad", "file": "apps/pod.yaml",
        "line": 1, "verdict": "denied"}  # fmt: skip
    (finding,) = bad["findings"]
    assert finding == {"policy": "pss-baseline", "code": "GG1103", "control": "Privileged Containers",
                       "level": "baseline", "severity": "HIGH", "blocking": True,
                       "message": "Privileged Containers: container 'app' is privileged",
                       "path": "spec.containers[0].securityContext.privileged"}  # fmt: skip
    assert report["objects"][1]["verdict"] == "allowed"


def test_check_exits_0_when_the_deny_level_is_off(repo: Path) -> None:
    result = CliRunner().invoke(main, ["check", "apps", "--pack", "pss-baseline", "--deny-level", "OFF"])
    assert result.exit_code == 0, result.output
    assert "Privileged Containers" in result.output and "fix: set securityContext.privileged to false" in result.output


def test_check_exits_2_naming_the_file_and_line_of_a_broken_policy(repo: Path) -> None:
    (repo / "policies").mkdir()
    (repo / "policies" / "p.yaml").write_text(
        "apiVersion: gitopsguard.io/v1alpha1\nkind: Policy\nmetadata: {name: p}\nspec:\n  builtin: nope\n"
    )
    result = CliRunner().invoke(main, ["check", "apps", "--policies", "policies"])
    assert result.exit_code == 2
    assert "policies/p.yaml:5: unknown built-in 'nope'" in result.output
