"""`make demo` builds and imports its images while the cluster starts (``demo_incluster_images.py``). Running
side by side must not hide a failure: a cluster that never comes up ends the wait for containerd at once, and a
failed build or import reaches the demo, which then stops before installing anything."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gitopsguard.commands.demo_incluster_images import NodeImages
from gitopsguard.devcluster import StateLayout
from gitopsguard.devcluster.progress import Progress, SilentProgress
from gitopsguard.errors import DevClusterError, ImageBuildError


def never(_: StateLayout) -> bool:
    return False


def test_a_cluster_that_does_not_come_up_ends_the_wait_for_containerd_at_once(tmp_path: Path) -> None:
    images = NodeImages(StateLayout(tmp_path), SilentProgress(), ready=never, images=lambda _: []).start()
    time.sleep(0.5)
    started = time.monotonic()
    images.abandon()
    assert time.monotonic() - started < 2
    with pytest.raises(DevClusterError, match="did not come up; no image was imported"):
        images.wait()


def test_a_failed_build_reaches_the_demo(tmp_path: Path) -> None:
    def broken(_: Progress) -> list[tuple[str, Path]]:
        raise ImageBuildError("Dockerfile: buildah failed")

    images = NodeImages(StateLayout(tmp_path), SilentProgress(), ready=never, images=broken).start()
    with pytest.raises(ImageBuildError, match="buildah failed"):
        images.wait()


def test_an_archive_that_is_missing_when_containerd_answers_is_refused_not_skipped(tmp_path: Path) -> None:
    """The import starts only once containerd answers, and its failure is the demo's."""
    answers = iter([False, False, True])
    archive = tmp_path / "gone.tar"
    images = NodeImages(StateLayout(tmp_path), SilentProgress(), ready=lambda _: next(answers),
                        images=lambda _: [("gitopsguard:dev", archive)]).start()  # fmt: skip
    with pytest.raises(DevClusterError, match="no such image archive"):
        images.wait()
