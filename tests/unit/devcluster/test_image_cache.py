"""The image cache never holds a half-made base or archive, and reuses an archive only for the same inputs.

debootstrap and buildah are stood in for by small scripts on PATH (as test_build_cache.py stands in for
Kubernetes' Makefile), so a failure can be made at each step; the real tools run in
tests/integration/test_image_build.py.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest

from gitopsguard.devcluster import base_image
from gitopsguard.devcluster.base_image import BASE_BUILD_ID, BaseImage, ImageCache, build_base, cached_base
from gitopsguard.devcluster.image import (
    ARCHIVE_NAME,
    ImageSpec,
    build,
    cached_image_valid,
    check_archive,
    image_build_id,
)
from gitopsguard.devcluster.image_context import stage_context
from gitopsguard.devcluster.progress import SilentProgress
from gitopsguard.errors import ImageBuildError

REFERENCE = "docker.io/library/cache-test:dev"


def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **scripts: str) -> Path:
    """Put stand-ins for ``debootstrap`` and ``buildah`` first on PATH; each logs its call to calls.log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("debootstrap", "buildah"):
        body = scripts.get(name, "exit 97")
        (bin_dir / name).write_text(f'#!/bin/sh\necho "{name} $*" >> {tmp_path}/calls.log\n{body}\n')
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return tmp_path / "calls.log"


def write_base(cache: ImageCache, body: bytes = b"base", build: str = BASE_BUILD_ID) -> BaseImage:
    cache.base_dir.mkdir(parents=True)
    cache.base_archive.write_bytes(body)
    manifest = {"build": build, "archive": {"size": len(body), "sha256": "b" * 64}}
    cache.base_manifest.write_text(json.dumps(manifest))
    return BaseImage(cache.base_archive, "b" * 64)


def test_a_cached_base_is_used_only_with_its_manifest_build_id_and_size(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path / "images")
    assert cached_base(cache) is None
    write_base(cache)
    assert cached_base(cache) == BaseImage(cache.base_archive, "b" * 64)
    cache.base_archive.write_bytes(b"bas")  # cut short
    assert cached_base(cache) is None
    cache.base_archive.write_bytes(b"base")
    cache.base_manifest.write_text(json.dumps({"build": "debian-bullseye", "archive": {"size": 4, "sha256": "x"}}))
    assert cached_base(cache) is None
    cache.base_manifest.write_text("{not json")
    assert cached_base(cache) is None


def test_a_failed_debootstrap_leaves_nothing_in_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tools(tmp_path, monkeypatch, debootstrap='mkdir -p "$6/usr/bin"; echo "E: Couldn\'t download packages"; exit 1')
    cache = ImageCache(tmp_path / "images")
    with pytest.raises(ImageBuildError, match=r"(?s)^debootstrap of Debian bookworm.*exited 1.*download packages"):
        build_base(cache, SilentProgress())
    assert cached_base(cache) is None
    assert list((cache.root / "base").iterdir()) == []


def test_a_root_without_the_packages_is_refused_and_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = tools(tmp_path, monkeypatch, debootstrap='mkdir -p "$6/var/lib/dpkg"; touch "$6/var/lib/dpkg/status"')
    cache = ImageCache(tmp_path / "images")
    with pytest.raises(ImageBuildError, match=r"debootstrap finished but ca-certificates, git, gnupg"):
        build_base(cache, SilentProgress())
    assert "buildah" not in calls.read_text()
    assert list((cache.root / "base").iterdir()) == []


def test_a_failed_buildah_step_leaves_no_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    status = "\n".join(f"Package: {p}\nStatus: install ok installed\nVersion: 1\n" for p in base_image.BASE_PACKAGES)
    debootstrap = f'mkdir -p "$6/var/lib/dpkg" "$6/dev" "$6/etc"; printf "{status}" > "$6/var/lib/dpkg/status"'
    buildah = 'case "$*" in *" from "*) echo working-container;; *" add "*) echo "no space left"; exit 125;; esac'
    tools(tmp_path, monkeypatch, debootstrap=debootstrap, buildah=buildah)
    cache = ImageCache(tmp_path / "images")
    with pytest.raises(ImageBuildError, match=r"(?s)adding the base root.*exited 125.*no space left"):
        build_base(cache, SilentProgress())
    assert cached_base(cache) is None
    assert list((cache.root / "base").iterdir()) == []


def oci_archive(path: Path, names: list[str]) -> Path:
    manifests = [{"annotations": {"org.opencontainers.image.ref.name": name}} for name in names]
    index = {"schemaVersion": 2, "manifests": manifests}
    with tarfile.open(path, "w") as tar:
        data = json.dumps(index).encode()
        member = tarfile.TarInfo("index.json")
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    return path


def test_an_archive_is_accepted_only_under_the_reference_the_node_will_import(tmp_path: Path) -> None:
    check_archive(oci_archive(tmp_path / "good.tar", [REFERENCE]), REFERENCE)
    with pytest.raises(ImageBuildError, match=r"other.tar: names \['localhost/cache-test:dev'\], expected"):
        check_archive(oci_archive(tmp_path / "other.tar", ["localhost/cache-test:dev"]), REFERENCE)
    (tmp_path / "junk.tar").write_bytes(b"not a tar")
    with pytest.raises(ImageBuildError, match=r"junk.tar: not a readable OCI archive"):
        check_archive(tmp_path / "junk.tar", REFERENCE)


def test_the_build_id_names_every_input() -> None:
    spec = ImageSpec(REFERENCE, Path("/ctx"))
    base = BaseImage(Path("/b"), "1" * 64)
    ids = {
        image_build_id(spec, base, "c" * 64),
        image_build_id(spec, BaseImage(Path("/b"), "2" * 64), "c" * 64),
        image_build_id(spec, base, "d" * 64),
        image_build_id(ImageSpec("docker.io/library/other:dev", Path("/ctx")), base, "c" * 64),
        image_build_id(ImageSpec(REFERENCE, Path("/ctx"), "Dockerfile.dev"), base, "c" * 64),
    }
    assert len(ids) == 5


def cached_image(tmp_path: Path, cache: ImageCache, spec: ImageSpec, base: BaseImage) -> Path:
    """An archive cached for ``spec`` as it is now, as a finished build leaves it."""
    digest = stage_context(spec.context, tmp_path / "probe")
    directory = cache.built_dir(spec.cache_name)
    directory.mkdir(parents=True)
    archive = oci_archive(directory / ARCHIVE_NAME, [spec.reference])
    build_id = image_build_id(spec, base, digest)
    manifest = {"build": build_id, "archive": {"size": archive.stat().st_size}}
    (directory / "MANIFEST.json").write_text(json.dumps(manifest))
    assert cached_image_valid(directory, build_id)
    return archive


def test_an_unchanged_context_reuses_the_archive_and_a_changed_one_builds_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tools(tmp_path, monkeypatch, buildah='echo "buildah failed on purpose"; exit 3')
    cache = ImageCache(tmp_path / "images")
    base = write_base(cache)
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("ARG BASE\nFROM ${BASE}\nCOPY app.py /app.py\n")
    (context / "app.py").write_text("print('v1')\n")
    spec = ImageSpec(REFERENCE, context)
    archive = cached_image(tmp_path, cache, spec, base)
    built = build(spec, cache, SilentProgress(), confirm=lambda _: False)
    assert (built.reused, built.archive) == (True, archive)
    assert not calls.exists()  # neither buildah nor debootstrap ran
    (context / "app.py").write_text("print('v2')\n")
    with pytest.raises(ImageBuildError, match=r"(?s)building cache-test:dev.*exited 3"):
        build(spec, cache, SilentProgress(), confirm=lambda _: False)
    assert "buildah" in calls.read_text()
    # the failed build changed nothing in the cache and left no staging directory behind
    assert archive.read_bytes() == oci_archive(tmp_path / "same.tar", [REFERENCE]).read_bytes()
    assert sorted(p.name for p in (cache.root / "built").iterdir()) == [spec.cache_name]


def test_an_archive_cut_short_is_not_reused(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path / "images")
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\n")
    spec = ImageSpec(REFERENCE, context)
    base = write_base(cache)
    archive = cached_image(tmp_path, cache, spec, base)
    build_id = json.loads((archive.parent / "MANIFEST.json").read_text())["build"]
    with archive.open("r+b") as stream:
        stream.truncate(archive.stat().st_size - 1)
    assert not cached_image_valid(archive.parent, build_id)


def test_a_missing_dockerfile_says_where_to_build_from(tmp_path: Path) -> None:
    with pytest.raises(ImageBuildError, match=r"nowhere/Dockerfile: no Dockerfile here; build from a gitopsguard"):
        build(ImageSpec(REFERENCE, tmp_path / "nowhere"), ImageCache(tmp_path / "c"), SilentProgress(),
              confirm=lambda _: False)  # fmt: skip


def test_debootstrap_checks_the_release_signature_with_debians_keyring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The mirror is plain http; without a named keyring debootstrap only warns when it cannot check signatures.
    calls = tools(tmp_path, monkeypatch, debootstrap="exit 1")
    with pytest.raises(ImageBuildError):
        build_base(ImageCache(tmp_path / "images"), SilentProgress())
    assert "--keyring=/usr/share/keyrings/debian-archive-keyring.gpg" in calls.read_text().split()


def test_making_the_base_without_root_says_to_run_it_as_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(ImageBuildError, match=r"^the Debian bookworm base image: .*need root; run it as root"):
        build_base(ImageCache(tmp_path / "images"), SilentProgress())


def test_what_a_killed_build_left_behind_is_swept_and_a_running_one_is_not(tmp_path: Path) -> None:
    finished = subprocess.Popen(["true"])
    finished.wait()
    dead, alive = finished.pid, os.getpid()
    left = [tmp_path / "base" / f".staging-{dead}-1", tmp_path / "built" / f".staging-web_dev-{dead}-2",
            tmp_path / "built" / f".retired-{dead}-3"]  # fmt: skip
    running = [tmp_path / "base" / f".staging-{alive}-4", tmp_path / "built" / f".staging-x-{alive}-5"]
    for directory in [*left, *running]:
        directory.mkdir(parents=True)
    base_image.sweep_leftovers(tmp_path)
    assert [d.exists() for d in left] == [False, False, False]
    assert [d.exists() for d in running] == [True, True]


class Recorded:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def stage(self, message: str) -> None:
        self.lines.append(message)

    def detail(self, message: str) -> None:
        self.lines.append(message)


def test_a_second_build_of_one_entry_waits_for_the_first(tmp_path: Path) -> None:
    cache, second, inside = ImageCache(tmp_path / "images"), Recorded(), threading.Event()

    def build_again() -> None:
        with base_image.building(cache, "web_dev", second):
            inside.set()

    with base_image.building(cache, "web_dev", SilentProgress()):
        waiting = threading.Thread(target=build_again)
        waiting.start()
        deadline = time.monotonic() + 10
        while not second.lines and time.monotonic() < deadline:
            time.sleep(0.01)
        assert second.lines == ["web_dev: another build of it is running; waiting for it to finish"]
        assert not inside.wait(0.2)
    assert inside.wait(5)
    waiting.join()
