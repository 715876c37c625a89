"""`make demo` serves repo-template/'s Units layout (``demo_incluster.py``): a demo repository kept from before
that layout is refused with what to do, rather than installed to serve a root that is not there; and the story
watches the Lease the controller started with ``--root clusters/dev-units`` really leads. No cluster."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from gitopsguard.commands.demo import TEMPLATE
from gitopsguard.commands.demo_incluster import LEASE, OPERATOR_RBAC, ROOT, DemoInstall, _require_units_layout
from gitopsguard.commands.demo_incluster_units import ROOT as STORY_ROOT
from gitopsguard.commands.demo_incluster_units import TEAM_FOLDER, UNITS, shell
from gitopsguard.errors import DevClusterError


def test_a_demo_repository_from_before_the_units_layout_is_refused_with_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "clusters" / "dev").mkdir(parents=True)
    with pytest.raises(DevClusterError, match="make demo-down"):
        _require_units_layout(tmp_path)
    (tmp_path / ROOT).mkdir()
    _require_units_layout(tmp_path)


def test_the_story_watches_the_lease_of_the_root_unit_the_controller_serves() -> None:
    assert STORY_ROOT == ROOT
    assert LEASE == "gitopsguard-clusters-dev-units"  # run --root clusters/dev-units: unit clusters-dev-units


def test_the_template_holds_what_the_demo_installs_and_shows() -> None:
    assert OPERATOR_RBAC.is_file()
    assert (TEMPLATE / TEAM_FOLDER / "kustomization.yaml").is_file()
    declared = "".join(p.read_text() for p in (TEMPLATE / ROOT).glob("*.yaml"))
    for namespace, name in UNITS:
        assert f"name: {name}\n  namespace: {namespace}\n" in declared, name


def test_the_storys_commands_keep_the_callers_home_and_write_nothing_where_they_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """kubectl without HOME kept its discovery cache in ./.kube: the source checkout `make demo` runs from."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    demo = cast(DemoInstall, SimpleNamespace(kubeconfig=tmp_path / "kubeconfig"))
    assert shell(demo, ["sh", "-c", 'echo "home=$HOME config=$KUBECONFIG"'], "env") == 0
    assert f"home={tmp_path / 'home'} config={tmp_path / 'kubeconfig'}" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []
