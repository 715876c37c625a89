"""A second `make demo` after a change to gitopsguard runs the new code (no cluster).

The image is rebuilt and imported under the same tag (gitopsguard:dev), and the controller's Pod template does
not change: an earlier demo's Pods kept running the image they started with, and the story then showed the old
code as if it were the new. The demo records which build of the image the installed Pods run, and restarts them
when it imported another, as it already did when the repository's address changed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import cast

from kubernetes import client

from gitopsguard.commands.demo_incluster import IMAGE_RECORD, DemoInstall, remember_image, restart_reason
from gitopsguard.commands.demo_incluster_images import fingerprint
from gitopsguard.commands.demo_incluster_units import _pods_on_the_node
from gitopsguard.devcluster import StateLayout

URL = "git://10.244.0.1:9418/demo-repo"


def test_an_earlier_demos_pods_restart_when_gitopsguards_image_was_built_again(tmp_path: Path) -> None:
    state = StateLayout(tmp_path)
    remember_image(state, "build-1")
    assert restart_reason(state, URL, URL, "build-2") == "gitopsguard's image was built again"
    assert restart_reason(state, URL, URL, "build-1") == ""


def test_a_new_install_restarts_nothing_and_a_moved_repository_restarts_the_pods(tmp_path: Path) -> None:
    state = StateLayout(tmp_path)
    assert restart_reason(state, None, URL, "build-1") == ""
    remember_image(state, "build-1")
    assert restart_reason(state, "git://10.244.0.1:1234/demo-repo", URL, "build-1") == (
        "the demo repository's address changed")  # fmt: skip


def test_an_install_from_before_the_record_restarts_its_pods(tmp_path: Path) -> None:
    state = StateLayout(tmp_path)
    assert not (tmp_path / IMAGE_RECORD).exists()
    assert restart_reason(state, URL, URL, "build-1") == "gitopsguard's image was built again"


def test_an_archive_built_again_has_another_fingerprint(tmp_path: Path) -> None:
    archive = tmp_path / "image.oci.tar"
    archive.write_bytes(b"a" * 10)
    first = fingerprint(archive)
    assert fingerprint(archive) == first
    archive.write_bytes(b"b" * 11)
    assert fingerprint(archive) != first


def test_the_pods_on_the_node_leave_out_an_earlier_demos_replicas_on_their_way_out() -> None:
    def pod(name: str, *, leaving: bool) -> client.V1Pod:
        when = datetime(2026, 12, 6, tzinfo=UTC) if leaving else None
        return client.V1Pod(metadata=client.V1ObjectMeta(name=name, deletion_timestamp=when))

    pods = {"gitopsguard-system": [pod("old-1", leaving=True), pod("new-1", leaving=False)], "shop": [], "payments": []}
    core = SimpleNamespace(list_namespaced_pod=lambda namespace: SimpleNamespace(items=pods[namespace]))
    listed = _pods_on_the_node(cast(DemoInstall, SimpleNamespace(core=core)))
    names = [(namespace, p.metadata.name if p.metadata else "") for namespace, p in listed]
    assert names == [("gitopsguard-system", "new-1")]
