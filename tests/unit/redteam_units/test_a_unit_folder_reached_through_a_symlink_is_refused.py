"""A Unit's folder must be the folder its path names, not one a symlink leads to.

The root refuses Units whose paths overlap another Unit's or the root path (``units/root.overlapping``), on the
path strings. A team that may write ``teams/a/`` could turn the folder the root gave it (``teams/a/app``) into
a symlink to another Unit's folder, or to the root path: the strings no longer overlap, yet the render read
the other folder's files (plain YAML refused symlinked files and subfolders, never the folder itself nor a
folder on the way to it), and applied them as this Unit, under its label and inventory."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitopsguard.errors import RenderError
from gitopsguard.render import render

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: theirs, namespace: team-b}\n"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    (tmp_path / "teams" / "b").mkdir(parents=True)
    (tmp_path / "teams" / "b" / "cm.yaml").write_text(CONFIGMAP)
    (tmp_path / "teams" / "a").mkdir()
    (tmp_path / "teams" / "a" / "cm.yaml").write_text(CONFIGMAP.replace("theirs", "ours").replace("team-b", "a"))
    (tmp_path / "kust").mkdir()
    (tmp_path / "kust" / "kustomization.yaml").write_text("resources: [cm.yaml]\n")
    (tmp_path / "kust" / "cm.yaml").write_text(CONFIGMAP)
    return tmp_path


@pytest.mark.parametrize(
    ("link", "target", "path"),
    [
        ("teams/a/app", "../b", "teams/a/app"),  # the Unit's folder itself
        ("teams/a/app", "../b", "teams/a/app/"),
        ("teams/a/up", "..", "teams/a/up/b"),  # a folder on the way to it
        ("teams/a/app", "../../kust", "teams/a/app"),  # a kustomization elsewhere
    ],
)
def test_a_render_of_a_path_through_a_symlink_is_refused_naming_the_path(
    checkout: Path, link: str, target: str, path: str
) -> None:
    (checkout / link).symlink_to(target)
    with pytest.raises(RenderError, match="symlink") as refused:
        render(checkout, path)
    assert str(refused.value).startswith(path.rstrip("/")), refused.value


def test_a_folder_without_symlinks_still_renders(checkout: Path) -> None:
    assert [m.body["metadata"]["name"] for m in render(checkout, "teams/a").manifests] == ["ours"]
    assert [m.body["metadata"]["name"] for m in render(checkout, "./teams//a/").manifests] == ["ours"]
