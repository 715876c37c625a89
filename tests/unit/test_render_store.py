"""Renders kept on disk by commit: read back instead of rendering again, and never trusted when damaged."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gitopsguard.errors import RenderError
from gitopsguard.render.stored import KEEP, RenderStore

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  when: 2026-01-01\n"


def checkout(root: Path, name: str) -> Path:
    (root / "apps").mkdir(parents=True, exist_ok=True)
    (root / "apps" / "cm.yaml").write_text(CONFIGMAP.format(name=name))
    return root


def test_a_commit_rendered_once_is_read_back_from_disk_not_rendered_again(tmp_path: Path) -> None:
    store = RenderStore(tmp_path / "renders")
    root = checkout(tmp_path / "checkout", "first")
    first = store.render(root, "apps", "c1")
    checkout(root, "second")  # the tree changes: the same commit must still give its own render
    again = RenderStore(tmp_path / "renders").render(root, "apps", "c1")  # as a new process would
    assert [(m.key.name, m.origin, m.body) for m in again] == [(m.key.name, m.origin, m.body) for m in first]
    assert again[0].body["data"] == {"when": "2026-01-01"}
    assert [m.key.name for m in store.render(root, "apps", "c2")] == ["second"]  # another commit: rendered


def test_each_path_of_a_commit_is_kept_apart(tmp_path: Path) -> None:
    store = RenderStore(tmp_path / "renders")
    root = checkout(tmp_path / "checkout", "app")
    (root / "other").mkdir()
    (root / "other" / "cm.yaml").write_text(CONFIGMAP.format(name="other"))
    assert [m.key.name for m in store.render(root, "apps", "c1")] == ["app"]
    assert [m.key.name for m in store.render(root, "other", "c1")] == ["other"]


def test_a_damaged_or_foreign_stored_render_is_rendered_again_and_replaced(tmp_path: Path) -> None:
    store = RenderStore(tmp_path / "renders")
    root = checkout(tmp_path / "checkout", "first")
    store.render(root, "apps", "c1")
    (kept,) = (tmp_path / "renders").glob("*.json")
    checkout(root, "second")
    for damage in (kept.read_bytes()[:40], b'{"manifests": [[1, 2]]}', b"[]"):
        kept.write_bytes(damage)
        assert [m.key.name for m in store.render(root, "apps", "c1")] == ["second"]
        assert store.load(kept.stem) is not None  # rewritten whole


def test_a_render_that_fails_is_not_kept(tmp_path: Path) -> None:
    store = RenderStore(tmp_path / "renders")
    root = checkout(tmp_path / "checkout", "first")
    (root / "apps" / "broken.yaml").write_text("kind: [\n")
    for _ in range(2):
        with pytest.raises(RenderError, match=r"^apps/broken\.yaml:\d+: not valid YAML"):
            store.render(root, "apps", "c1")
    assert not list((tmp_path / "renders").glob("*"))


def test_only_the_newest_renders_and_no_old_half_written_files_are_kept(tmp_path: Path) -> None:
    store = RenderStore(tmp_path / "renders")
    root = checkout(tmp_path / "checkout", "old")
    left = tmp_path / "renders" / "killed-mid-write.tmp"
    left.parent.mkdir()
    left.write_text("{")
    os.utime(left, (0, 0))
    newest = f"c{KEEP + 1}"
    for n in range(KEEP + 2):
        store.render(root, "apps", f"c{n}")
    assert len(list((tmp_path / "renders").glob("*.json"))) == KEEP
    assert not left.exists()
    checkout(root, "new")
    assert [m.key.name for m in store.render(root, "apps", newest)] == ["old"]  # kept
    assert [m.key.name for m in store.render(root, "apps", "c0")] == ["new"]  # the oldest was dropped


def test_a_commit_kept_under_one_render_settings_is_rendered_again_under_tighter_ones(tmp_path: Path) -> None:
    from gitopsguard.render.settings import RenderSettings

    root = checkout(tmp_path / "checkout", "first")
    assert len(RenderStore(tmp_path / "renders").render(root, "apps", "c1")) == 1
    tight = RenderStore(tmp_path / "renders", RenderSettings(max_documents=0))
    with pytest.raises(RenderError, match=r"^apps/cm\.yaml:1: more than 0 documents"):
        tight.render(root, "apps", "c1")  # not the render kept under the default bounds
