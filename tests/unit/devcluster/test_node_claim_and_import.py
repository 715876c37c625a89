"""One machine runs one node (a second dev cluster cannot take a live one's), and images go only to a running node."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitopsguard.devcluster.node import claim_machine, import_image, release_machine
from gitopsguard.devcluster.paths import StateLayout
from gitopsguard.errors import DevClusterError


def test_second_cluster_is_refused_the_node_of_a_live_one(tmp_path: Path) -> None:
    claim = tmp_path / "claim"
    first, second = StateLayout(tmp_path / "first"), StateLayout(tmp_path / "second")
    first.root.mkdir()
    claim_machine(first, claim)
    with pytest.raises(DevClusterError, match=r"belongs to the dev cluster in .*first.*--no-node"):
        claim_machine(second, claim)
    assert claim.read_text().strip() == str(first.root)


def test_claim_of_a_removed_cluster_is_taken_over(tmp_path: Path) -> None:
    claim = tmp_path / "claim"
    claim.write_text(f"{tmp_path / 'gone'}\n")
    mine = StateLayout(tmp_path / "mine")
    claim_machine(mine, claim)
    assert claim.read_text().strip() == str(mine.root)


def test_release_leaves_another_clusters_claim_alone(tmp_path: Path) -> None:
    claim = tmp_path / "claim"
    owner, other = StateLayout(tmp_path / "owner"), StateLayout(tmp_path / "other")
    owner.root.mkdir()
    claim_machine(owner, claim)
    release_machine(other, claim)
    assert claim.exists()
    release_machine(owner, claim)
    assert not claim.exists()


def test_import_into_a_cluster_without_a_node_says_how_to_start_one(tmp_path: Path) -> None:
    archive = tmp_path / "image.tar"
    archive.write_bytes(b"not read")
    with pytest.raises(DevClusterError, match=r"image\.tar: the dev cluster in .* runs no node .*dev-cluster up"):
        import_image(archive, StateLayout(tmp_path / "no-cluster"))


def test_import_of_a_missing_archive_names_it(tmp_path: Path) -> None:
    with pytest.raises(DevClusterError, match=r"missing\.tar: no such image archive"):
        import_image(tmp_path / "missing.tar", StateLayout(tmp_path / "no-cluster"))
