"""`make demo` as a newcomer who is not root (no cluster): refused at once with what to run instead.

The demo installs gitopsguard as Pods on a node of this machine, which needs root. Before, it began building
both images (minutes on a cold cache, and the base image itself refuses a non-root user) and only then failed in
the cluster's start, telling the user to run `gitopsguard dev-cluster up --no-node`: a cluster the demo refuses."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gitopsguard.commands import demo_incluster
from gitopsguard.devcluster.progress import SilentProgress
from gitopsguard.errors import DevClusterError


def test_make_demo_without_root_is_refused_before_anything_starts_and_names_make_demo_local(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GITOPSGUARD_DEV_CLUSTER_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # the one os module, the demo's too

    def no_images(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the images were started for a node that cannot run")

    monkeypatch.setattr(demo_incluster, "NodeImages", no_images)
    with pytest.raises(DevClusterError, match=r"needs root.*sudo make demo.*make demo-local"):
        demo_incluster.install_demo(SilentProgress())
    assert not (tmp_path / "state").exists()
