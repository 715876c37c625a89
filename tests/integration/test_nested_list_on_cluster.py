"""Red team round 2 (beyond issue 20, found on the way): a List nested in a List is one object of kind `List`.

Before the fix, ``render/plain.py`` expanded one level of `List` and handed an item that is itself a `*List`
with `items` on unchecked. The nested objects are then invisible to the policy gate (a `List`
matches no policy) and to ``heads._outside_the_controller`` (its namespace is ""). They are never written:
the dynamic client's ``ResourceList`` has no URL, so ``Applier._path_of`` raises TypeError (not ApplyError)
and the pass ends in a traceback instead of a refusal that names the file. One file in a path any approver
may merge stops the unit's applies.

"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from gitopsguard.cli import main
from tests.integration.conftest import LiveCluster

pytestmark = pytest.mark.integration
NESTED = """apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: List
  items:
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: inner, namespace: gitopsguard-system}, data: {a: b}}
"""


def test_a_list_nested_in_a_list_is_refused_naming_the_file(
    tmp_path: Path,
    namespace: str,
    dev_cluster: LiveCluster,
) -> None:
    work = tmp_path / "repo"
    (work / "apps").mkdir(parents=True)
    (work / "apps" / "list.yaml").write_text(NESTED)
    (work / "apps" / "web.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n")
    env = {"GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@x",
           "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}  # fmt: skip
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "nested"]):
        subprocess.run(["git", *args], cwd=work, env=env, check=True)
    result = CliRunner().invoke(main, [
        "reconcile", "--repo", str(work), "--path", "apps", "--unit", namespace, "--namespace", namespace,
        "--kubeconfig", str(dev_cluster.kubeconfig), "--workdir", str(tmp_path / "work"), "--policies-path", "",
    ])  # fmt: skip
    print(result.output, repr(result.exception))
    assert not isinstance(result.exception, TypeError)
    assert result.exit_code == 2 and "apps/list.yaml" in result.output
