"""Backups of hostile objects: any name a cluster can hold (or a forged one) is backed up to a file inside
the backup directory, of bounded length, and two objects never share a file."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.backup import MAX_COMPONENT, backup, backup_path
from gitopsguard.model import ObjectKey

NOW = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


def body(key: ObjectKey) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": key.kind, "metadata": {"name": key.name, "namespace": key.namespace}}


def test_a_workload_with_a_240_character_name_is_backed_up(tmp_path: Path) -> None:
    key = ObjectKey("", "Pod", "shop", "p" * 240)  # a valid name: Kubernetes allows up to 253 characters
    saved = backup(tmp_path, key, body(key), NOW)
    assert yaml.safe_load(saved.read_text())["metadata"]["name"] == "p" * 240
    assert saved.parent == tmp_path / "shop" and len(saved.name) <= MAX_COMPONENT


def test_a_name_that_climbs_out_of_the_backup_directory_stays_inside_it(tmp_path: Path) -> None:
    key = ObjectKey("", "Pod", "../..", "../../../etc/cron.d/x")
    saved = backup(tmp_path / "backups", key, body(key), NOW)
    assert saved.resolve().is_relative_to((tmp_path / "backups").resolve())
    assert not (tmp_path / "etc").exists()


def test_a_planted_symlink_in_place_of_the_backup_file_is_never_followed(tmp_path: Path) -> None:
    key = ObjectKey("", "Pod", "shop", "web")
    first = backup(tmp_path, key, body(key), NOW)
    target = tmp_path / "elsewhere"
    first.unlink()
    first.symlink_to(target)
    second = backup(tmp_path, key, body(key), NOW)
    assert second != first and not target.exists()


_NAMES = st.text(min_size=1, max_size=300)


@given(kind=st.text(min_size=1, max_size=80), namespace=st.text(max_size=300), name=_NAMES)
@example(kind="Pod", namespace="shop", name="p" * 240)
@example(kind="Pod", namespace="..", name="..")
@example(kind="Pod", namespace="shop", name="a/b\x00c")
@example(kind="Pod", namespace="shop", name="é" * 200)
def test_every_name_is_backed_up_to_a_bounded_file_inside_the_directory(kind: str, namespace: str, name: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "backups"
        key = ObjectKey("", kind, namespace, name)
        saved = backup(root, key, body(key), NOW)
        relative = saved.relative_to(root)
        assert len(relative.parts) == 2 and all(part != ".." for part in relative.parts)
        assert all(len(part.encode()) <= MAX_COMPONENT for part in relative.parts)
        assert saved.resolve().is_relative_to(root.resolve())
        assert yaml.safe_load(saved.read_text())["metadata"]["name"] == name


@given(first=_NAMES, second=_NAMES)
@example(first="a" * 240, second="a" * 239 + "b")
@example(first="a/b", second="a_b")
@example(first="same", second="same")
def test_two_objects_never_share_a_backup_file(first: str, second: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        a, b = ObjectKey("", "Pod", "shop", first), ObjectKey("", "Pod", "shop", second)
        assert (backup_path(root, a, NOW) == backup_path(root, b, NOW)) == (first == second)
        saved_a, saved_b = backup(root, a, body(a), NOW), backup(root, b, body(b), NOW)
        assert saved_a != saved_b  # the same object twice in one second: the first backup is kept too
        assert yaml.safe_load(saved_a.read_text())["metadata"]["name"] == first
