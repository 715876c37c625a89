"""`down` removes a dev cluster's state directory and nothing else: a mistyped `--state-dir` loses no files."""

from __future__ import annotations

from pathlib import Path

from gitopsguard.devcluster import CacheLayout, DevCluster, StateLayout
from gitopsguard.devcluster.progress import SilentProgress


def test_down_on_a_directory_that_holds_no_dev_cluster_deletes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "work").mkdir(parents=True)
    (home / "work" / "thesis.tex").write_text("years of work")
    cluster = DevCluster(StateLayout(home), CacheLayout(tmp_path / "cache"), SilentProgress())
    assert cluster.down() == ()
    assert (home / "work" / "thesis.tex").read_text() == "years of work"


def test_down_removes_the_state_directory_of_a_cluster_that_is_not_running(tmp_path: Path) -> None:
    state = StateLayout(tmp_path / "state")
    state.root.mkdir()
    state.state_file.write_text('{"ports": {"etcd_client": 1, "etcd_peer": 2, "apiserver": 3}}\n')
    (state.root / "logs").mkdir()
    DevCluster(state, CacheLayout(tmp_path / "cache"), SilentProgress()).down()
    assert not state.root.exists()
