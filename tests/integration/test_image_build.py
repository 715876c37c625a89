"""The images, built for real with buildah on the Debian base, run as manifests/ runs them.

manifests/controller.yaml runs gitopsguard as uid 65532 (no root, no passwd entry needed from the runtime) with a
read-only root filesystem and HOME on a writable /tmp. These tests unpack each built archive (buildah mounts it)
and run commands in it the way a runtime would: a private mount namespace, the root bind-mounted read-only,
tmpfs on /tmp, /proc and /dev, then chroot as 65532:65532 with the image's own Env, User and Entrypoint.

The first run builds the Debian base and both images (minutes); later runs reuse the cached archives.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from gitopsguard.devcluster.base_image import Buildah, ImageCache
from gitopsguard.devcluster.image import BuiltImage, ImageSpec, build, demo_web_image, gitopsguard_image
from gitopsguard.devcluster.progress import StagedProgress

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1800),  # a cold build (base and image) took 7 min 19 s on a busy 2-core machine
    pytest.mark.skipif(os.geteuid() != 0, reason="buildah with vfs storage and chroot need root (CI runs as root)"),
]
CACHE = ImageCache.default()


def built(spec: ImageSpec) -> BuiltImage:
    return build(spec, CACHE, StagedProgress(sys.stderr), confirm=lambda _: False)


def image_config(archive: Path) -> dict[str, Any]:
    """The OCI config of the archive's one image: Env, User, Entrypoint, WorkingDir."""
    with tarfile.open(archive) as tar:

        def blob(digest: str) -> Any:
            member = tar.extractfile("blobs/sha256/" + digest.removeprefix("sha256:"))
            assert member is not None
            return json.loads(member.read())

        member = tar.extractfile("index.json")
        assert member is not None
        manifest = blob(json.loads(member.read())["manifests"][0]["digest"])
        config: dict[str, Any] = blob(manifest["config"]["digest"])["config"]
        return config


def image_reference(archive: Path) -> str:
    with tarfile.open(archive) as tar:
        member = tar.extractfile("index.json")
        assert member is not None
        name: str = json.loads(member.read())["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]
        return name


@contextlib.contextmanager
def unpacked(archive: Path) -> Iterator[Path]:
    """The image's root filesystem, as buildah unpacks it from the archive."""
    buildah = Buildah(CACHE)
    name = f"image-test-{uuid.uuid4().hex[:8]}"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(buildah.argv(*args), env=buildah.env(), capture_output=True, text=True)

    made = run("from", "--pull-never", "--name", name, f"oci-archive:{archive}")
    assert made.returncode == 0, made.stderr
    try:
        mounted = run("mount", name)
        assert mounted.returncode == 0, mounted.stderr
        yield Path(mounted.stdout.strip())
    finally:
        run("rm", name)
        run("rmi", image_reference(archive))  # the archive is the product; keep buildah's storage small


def runtime_argv(root: Path, config: dict[str, Any], command: list[str], *, read_only: bool = True) -> list[str]:
    """Run ``command`` in ``root`` as a runtime would run the image under manifests/ (user from its config)."""
    r = shlex.quote(str(root))
    mounts = [f"mount --bind {r} {r}"]
    if read_only:
        mounts.append(f"mount -o remount,bind,ro {r}")
    mounts += [
        f"mount -t tmpfs -o size=64m,mode=1777 tmpfs {r}/tmp",
        f"mount -t proc proc {r}/proc",
        f"mount --rbind /dev {r}/dev",
    ]
    env = " ".join(shlex.quote(item) for item in config.get("Env", []))
    user = config.get("User") or "0:0"
    run = f"exec chroot --userspec={shlex.quote(user)} {r} /usr/bin/env -i {env} {shlex.join(command)}"
    return ["unshare", "--mount", "--fork", "--kill-child", "sh", "-ec", " && ".join([*mounts, run])]


@pytest.fixture(scope="module")
def gitopsguard_root() -> Iterator[tuple[Path, dict[str, Any]]]:
    image = built(gitopsguard_image())
    with unpacked(image.archive) as root:
        yield root, image_config(image.archive)


def in_image(image: tuple[Path, dict[str, Any]], script: str, *, read_only: bool = True) -> str:
    root, config = image
    done = subprocess.run(
        runtime_argv(root, config, ["sh", "-c", script], read_only=read_only),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"exit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
    return done.stdout + done.stderr


def test_the_image_runs_gitopsguard_as_65532_with_home_on_tmp(gitopsguard_root: tuple[Path, dict[str, Any]]) -> None:
    root, config = gitopsguard_root
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["gitopsguard"]
    assert "HOME=/tmp" in config["Env"]
    entry = subprocess.run(
        runtime_argv(root, config, [*config["Entrypoint"], "--version"]), capture_output=True, text=True, timeout=60
    )
    assert (entry.returncode, entry.stdout.strip()) == (0, "gitopsguard, version 0.1.0"), entry.stderr
    assert in_image(gitopsguard_root, "id -u; id -g").split() == ["65532", "65532"]
    assert [p.name for p in (root / "opt" / "gitopsguard").iterdir()] == ["venv"]  # no build tree, no copy of the code


def layer_names(archive: Path) -> Iterator[str]:
    """Every path in every layer of the archive (what a whiteout hides in the unpacked root is still here)."""
    with tarfile.open(archive) as outer:

        def blob(digest: str) -> IO[bytes]:
            member = outer.extractfile("blobs/sha256/" + digest.removeprefix("sha256:"))
            assert member is not None
            return member

        index = json.loads(blob_named(outer, "index.json"))
        manifest = json.loads(blob(index["manifests"][0]["digest"]).read())
        for layer in manifest["layers"]:
            with tarfile.open(fileobj=blob(layer["digest"]), mode="r|*") as tar:
                yield from (member.name for member in tar)


def blob_named(tar: tarfile.TarFile, name: str) -> bytes:
    member = tar.extractfile(name)
    assert member is not None
    return member.read()


def test_the_build_ca_bundle_and_the_source_tree_are_in_no_layer() -> None:
    names = set(layer_names(built(gitopsguard_image()).archive))
    assert "opt/gitopsguard/venv/bin/gitopsguard" in names  # the listing does reach the image's own layer
    assert not [name for name in names if name.endswith("build-ca")]  # a secret mount, never written
    assert not [name for name in names if name.startswith("opt/gitopsguard/build/")]


def test_git_ssh_gpg_and_kubectl_run_on_a_read_only_root(gitopsguard_root: tuple[Path, dict[str, Any]]) -> None:
    out = in_image(gitopsguard_root, "git --version; ssh -V; gpg --version; kubectl version --client")
    assert "git version 2.39." in out
    assert "OpenSSH_9.2" in out
    assert "gpg (GnuPG) 2.2." in out
    assert "Client Version: v1." in out


def test_git_ssh_and_gpg_do_their_work_with_only_tmp_writable(gitopsguard_root: tuple[Path, dict[str, Any]]) -> None:
    script = """
        gpg --batch --list-keys
        ssh -G git.example.com | grep -x 'user gitopsguard'
        ssh-keygen -q -t ed25519 -N '' -C ci -f /tmp/key
        echo data > /tmp/data
        ssh-keygen -Y sign -q -n git -f /tmp/key /tmp/data
        echo "ci $(cat /tmp/key.pub)" > /tmp/allowed
        ssh-keygen -Y verify -n git -f /tmp/allowed -I ci -s /tmp/data.sig < /tmp/data
        git init -q /tmp/repo
        git -C /tmp/repo -c user.name=ci -c user.email=ci@example.com commit -q --allow-empty -m first
        git -C /tmp/repo log --format=%s
    """
    out = in_image(gitopsguard_root, script)
    assert 'Good "git" signature for ci' in out
    assert "first" in out.splitlines()  # the commit git made


def test_the_root_filesystem_is_read_only(gitopsguard_root: tuple[Path, dict[str, Any]]) -> None:
    out = in_image(gitopsguard_root, "touch /tmp/ok && ! touch /opt/gitopsguard/x 2>&1 || exit 9")
    assert "Read-only file system" in out


def test_the_controller_cannot_rewrite_its_own_code_even_on_a_writable_root(
    gitopsguard_root: tuple[Path, dict[str, Any]],
) -> None:
    # A compromised controller must not be able to plant code for the next start, whatever the Pod's settings.
    out = in_image(gitopsguard_root, "find / -xdev -writable -print 2>/dev/null || true", read_only=False)
    writable = set(out.split())
    assert writable <= {"/tmp", "/var/tmp", "/run/lock", "/var/lock"}, writable  # Debian's sticky scratch dirs


def test_the_demo_web_image_answers_healthz_as_65532_on_a_read_only_root() -> None:
    image = built(demo_web_image())
    config = image_config(image.archive)
    assert config["User"] == "65532:65532"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = [item for item in config["Env"] if not item.startswith("PORT=")] + [f"PORT={port}"]
    with unpacked(image.archive) as root:
        server = subprocess.Popen(runtime_argv(root, {**config, "Env": env}, config["Entrypoint"]))
        try:
            assert _get(f"http://127.0.0.1:{port}/healthz", server) == (200, "ok\n")
        finally:
            stop(server)


def stop(runner: subprocess.Popen[bytes]) -> None:
    """Stop the command ``runtime_argv`` started: unshare keeps SIGTERM for its child, so signal that child."""
    children = Path(f"/proc/{runner.pid}/task/{runner.pid}/children")
    with contextlib.suppress(OSError):
        for pid in children.read_text().split():
            os.kill(int(pid), signal.SIGTERM)
    try:
        runner.wait(10)
    except subprocess.TimeoutExpired:
        runner.kill()
        runner.wait(10)


def _get(url: str, server: subprocess.Popen[bytes]) -> tuple[int, str]:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 (a loopback URL of our own)
                return answer.status, answer.read().decode()
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_a_changed_context_is_built_again_and_an_unchanged_one_reused(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("ARG BASE=python:3.11-slim-bookworm\nFROM ${BASE}\nCOPY hello.txt /hello.txt\n")
    (context / "hello.txt").write_text("one\n")
    spec = ImageSpec(f"docker.io/library/gitopsguard-rebuild-test-{uuid.uuid4().hex[:8]}:dev", context)
    try:
        first = built(spec)
        again = built(spec)
        assert (first.reused, again.reused, again.archive) == (False, True, first.archive)
        (context / "hello.txt").write_text("two\n")
        changed = built(spec)
        assert not changed.reused
        assert changed.build_id != first.build_id
        with unpacked(changed.archive) as root:
            assert (root / "hello.txt").read_text() == "two\n"
    finally:
        shutil.rmtree(CACHE.built_dir(spec.cache_name), ignore_errors=True)
