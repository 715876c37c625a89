"""gitopsguard's image and the demo's web image, built with buildah on the Debian base and kept as OCI archives.

``build_image`` builds a Dockerfile the way any builder would (``--build-arg BASE=oci-archive:<base>`` is the
only difference) and writes ``buildah push IMAGE oci-archive:FILE:IMAGE``. The archive's reference is the
name a Pod's ``image: gitopsguard:dev`` means to the node (``docker.io/library/gitopsguard:dev``), for the
node's ``import_image(archive)``.

An archive is reused while its build id is unchanged: the hash of the staged build context (exactly the files
buildah is given, ``image_context.py``), the base's sha256, the Dockerfile's name and this module's recipe.
Like the base, a new archive is made in a staging directory and its ``MANIFEST.json`` is written last.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import ssl
import subprocess
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gitopsguard.devcluster.base_image import (
    BaseImage,
    Buildah,
    ImageCache,
    building,
    ensure_base,
    move_into_place,
    require_root,
)
from gitopsguard.devcluster.image_context import stage_context
from gitopsguard.devcluster.progress import Progress
from gitopsguard.devcluster.system import interactive_confirm
from gitopsguard.errors import ImageBuildError

SOURCE_ROOT = Path(__file__).resolve().parents[2]
_RECIPE = 1  # bump when the buildah arguments below change what an image holds
ARCHIVE_NAME = "image.oci.tar"


@dataclass(frozen=True)
class ImageSpec:
    reference: str  # fully qualified, as containerd names it: docker.io/library/<name>:<tag>
    context: Path
    dockerfile: str = "Dockerfile"

    @property
    def short_name(self) -> str:
        """How a Pod names it: ``gitopsguard:dev``."""
        return self.reference.removeprefix("docker.io/library/")

    @property
    def cache_name(self) -> str:
        return self.short_name.replace("/", "_").replace(":", "_")


def gitopsguard_image(source_root: Path = SOURCE_ROOT) -> ImageSpec:
    return ImageSpec("docker.io/library/gitopsguard:dev", source_root)


def demo_web_image(source_root: Path = SOURCE_ROOT) -> ImageSpec:
    """A Python http.server answering ``/healthz``, for the demo's workloads on the node."""
    return ImageSpec("docker.io/library/gitopsguard-demo-web:dev", source_root / "images" / "demo-web")


@dataclass(frozen=True)
class BuiltImage:
    reference: str
    archive: Path
    build_id: str
    reused: bool


def build_image(
    spec: ImageSpec,
    cache: ImageCache | None = None,
    progress: Progress | None = None,
    *,
    confirm: Callable[[str], bool] = interactive_confirm,
) -> Path:
    """The OCI archive of ``spec``'s image, built unless an archive of the same inputs is cached."""
    from gitopsguard.devcluster.progress import StagedProgress

    return build(spec, cache or ImageCache.default(), progress or StagedProgress(), confirm=confirm).archive


def build(spec: ImageSpec, cache: ImageCache, progress: Progress, *, confirm: Callable[[str], bool]) -> BuiltImage:
    """``build_image`` with what it did: the archive, its build id and whether a cached one was reused."""
    _check_dockerfile(spec)
    base = ensure_base(cache, progress, confirm=confirm)
    final = cache.built_dir(spec.cache_name)
    with building(cache, spec.cache_name, progress):
        staging = final.with_name(f".staging-{spec.cache_name}-{os.getpid()}-{time.monotonic_ns()}")
        try:
            context_digest = stage_context(spec.context, staging / "context", spec.dockerfile)
            build_id = image_build_id(spec, base, context_digest)
            if cached_image_valid(final, build_id):
                progress.stage(f"{spec.short_name}: unchanged since the last build; using {final / ARCHIVE_NAME}")
                return BuiltImage(spec.reference, final / ARCHIVE_NAME, build_id, reused=True)
            _build_into(staging, spec, base, cache, progress)
            fields = {"build": build_id, "reference": spec.reference, "context_sha256": context_digest}
            _write_manifest(staging, {**fields, "base_sha256": base.sha256})
            move_into_place(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    progress.stage(f"{spec.short_name}: built {final / ARCHIVE_NAME}")
    return BuiltImage(spec.reference, final / ARCHIVE_NAME, build_id, reused=False)


def _write_manifest(staging: Path, fields: dict[str, str]) -> None:
    """Written last: only a complete, checked archive gets a manifest, and only a manifest makes it reusable."""
    manifest = {**fields, "archive": {"size": (staging / ARCHIVE_NAME).stat().st_size}}
    (staging / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _build_into(staging: Path, spec: ImageSpec, base: BaseImage, cache: ImageCache, progress: Progress) -> None:
    require_root(spec.short_name)
    progress.stage(f"{spec.short_name}: building from {spec.context / spec.dockerfile} on the Debian base")
    _build_and_push(spec, base, cache, staging, progress)
    shutil.rmtree(staging / "context")


def image_build_id(spec: ImageSpec, base: BaseImage, context_digest: str) -> str:
    fields = (f"recipe-{_RECIPE}", spec.reference, spec.dockerfile, base.sha256, context_digest)
    digest = hashlib.sha256()
    for field in fields:
        encoded = field.encode()
        digest.update(len(encoded).to_bytes(8, "big") + encoded)
    return digest.hexdigest()


def cached_image_valid(directory: Path, build_id: str) -> bool:
    try:
        manifest = json.loads((directory / "MANIFEST.json").read_text())
        size = (directory / ARCHIVE_NAME).stat().st_size
        return bool(manifest.get("build") == build_id and size == manifest["archive"]["size"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _check_dockerfile(spec: ImageSpec) -> None:
    dockerfile = spec.context / spec.dockerfile
    if not dockerfile.is_file():
        raise ImageBuildError(
            f"{dockerfile}: no Dockerfile here; build from a gitopsguard source checkout (make demo, make test)"
        )


def _build_and_push(spec: ImageSpec, base: BaseImage, cache: ImageCache, staging: Path, progress: Progress) -> None:
    buildah = Buildah(cache)
    log = cache.log_dir / f"{spec.cache_name}.log"
    log.unlink(missing_ok=True)  # one build per log
    context = staging / "context"
    bud = ["bud", "--isolation", "chroot", "--pull-never", "--layers=false", "--build-arg",
           f"BASE=oci-archive:{base.archive}", "-f", str(context / spec.dockerfile), "-t", spec.reference]  # fmt: skip
    bud += _ca_secret()
    buildah.run([*bud, str(context)], log, progress, f"building {spec.short_name} (log: {log})")
    archive = staging / ARCHIVE_NAME
    try:
        buildah.run(["push", spec.reference, f"oci-archive:{archive}:{spec.reference}"], log, progress,
                    f"writing {spec.short_name}'s archive")  # fmt: skip
    finally:
        # the archive is what is kept; a copy in vfs storage would only take the disk again
        subprocess.run(buildah.argv("rmi", spec.reference), capture_output=True, env=buildah.env(), check=False)
    check_archive(archive, spec.reference)


def _ca_secret() -> list[str]:
    """The CA bundle this machine trusts, for pip in the build (a TLS-inspecting proxy); never in a layer."""
    paths = ssl.get_default_verify_paths()
    for candidate in (os.environ.get("SSL_CERT_FILE"), paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return ["--secret", f"id=build-ca,src={candidate}"]
    return []


def check_archive(archive: Path, reference: str) -> None:
    """The archive is an OCI layout whose one manifest is named ``reference``, as the node will import it."""
    try:
        with tarfile.open(archive) as tar:
            member = tar.extractfile("index.json")
            index = json.loads(member.read() if member else b"{}")
        names = [m.get("annotations", {}).get("org.opencontainers.image.ref.name") for m in index["manifests"]]
    except (OSError, tarfile.TarError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ImageBuildError(f"{archive}: not a readable OCI archive ({error}); nothing was cached") from error
    if names != [reference]:
        raise ImageBuildError(f"{archive}: names {names}, expected [{reference!r}]; nothing was cached")
