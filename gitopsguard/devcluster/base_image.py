"""The Debian base that the dev cluster's images are built on, made once from Debian's packages and cached.

No registry can be reached here, so no base can be pulled. debootstrap makes a minimal bookworm root with
python3, python3-venv, git, openssh-client, gnupg and ca-certificates, and buildah turns that root into a
one-layer OCI image archive. It is cached the way ``build.py`` caches binaries: made in a staging directory,
``MANIFEST.json`` written last, the directory renamed into place. A cache whose manifest names another build
id, or whose archive is not the size recorded, is made again.

Everything buildah keeps (its vfs storage, run root and temporary files) lives under the cache directory, never
in /var/lib/containers or /var/tmp.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from gitopsguard.devcluster.progress import Progress, heartbeat
from gitopsguard.devcluster.system import DEBIAN_KEYRING, IMAGE_COMMANDS, ensure_packages
from gitopsguard.errors import ImageBuildError

BASE_SUITE = "bookworm"
BASE_MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ("ca-certificates", "git", "gnupg", "openssh-client", "python3", "python3-venv")
_RECIPE = 1  # bump when the trimming or the image configuration below changes
# Names what went into the base; a cached base made any other way is made again.
BASE_BUILD_ID = f"debian-{BASE_SUITE}-minbase+{','.join(BASE_PACKAGES)}+{BASE_MIRROR}+recipe-{_RECIPE}"
BASE_REFERENCE = f"localhost/gitopsguard-base:{BASE_SUITE}"
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Made by the build machine or a runtime, not part of an image: devices, its resolver, its name.
_TRIMMED = ("dev", "var/cache/apt/archives", "var/lib/apt/lists", "usr/share/man", "usr/share/info")
_EMPTIED = ("etc/resolv.conf", "etc/hostname", "etc/machine-id")


@dataclass(frozen=True)
class ImageCache:
    """``<root>/base/bookworm/`` (the base), ``<root>/built/<name>/`` (images), ``<root>/buildah/`` (storage)."""

    root: Path

    @classmethod
    def default(cls) -> ImageCache:
        override = os.environ.get("GITOPSGUARD_CACHE_DIR")
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = Path(override) if override else (Path(xdg) if xdg else Path.home() / ".cache") / "gitopsguard"
        return cls(root=base / "images")

    @property
    def base_dir(self) -> Path:
        return self.root / "base" / BASE_SUITE

    @property
    def base_archive(self) -> Path:
        return self.base_dir / "base.oci.tar"

    @property
    def base_manifest(self) -> Path:
        """Written last, after the archive is complete: its presence is what makes the cached base valid."""
        return self.base_dir / "MANIFEST.json"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    def built_dir(self, name: str) -> Path:
        return self.root / "built" / name


@dataclass(frozen=True)
class BaseImage:
    archive: Path
    sha256: str
    reference: str = BASE_REFERENCE


@dataclass(frozen=True)
class Buildah:
    """buildah with vfs storage and chroot isolation, keeping all its state under the image cache."""

    cache: ImageCache

    def argv(self, *args: str) -> list[str]:
        state = self.cache.root / "buildah"
        return ["buildah", "--storage-driver", "vfs", "--root", str(state / "storage"),
                "--runroot", str(state / "run"), *args]  # fmt: skip

    def env(self) -> dict[str, str]:
        tmp = self.cache.root / "buildah" / "tmp"  # buildah stages whole layers in TMPDIR (/var/tmp otherwise)
        tmp.mkdir(parents=True, exist_ok=True)
        return {**os.environ, "TMPDIR": str(tmp), "BUILDAH_ISOLATION": "chroot"}

    def run(self, args: Sequence[str], log: Path, progress: Progress, what: str) -> str:
        """Run ``buildah args``; its output goes to ``log``; the last line printed is returned."""
        return run_logged(self.argv(*args), log, progress, what, env=self.env())


def cached_base(cache: ImageCache) -> BaseImage | None:
    """The cached base when its manifest names this build and its archive has the recorded size."""
    try:
        manifest = json.loads(cache.base_manifest.read_text())
        archive = manifest["archive"]
        if manifest.get("build") != BASE_BUILD_ID or cache.base_archive.stat().st_size != archive["size"]:
            return None
        return BaseImage(cache.base_archive, str(archive["sha256"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def ensure_base(cache: ImageCache, progress: Progress, *, confirm: Callable[[str], bool]) -> BaseImage:
    """The cached base, made first (about two minutes) unless a valid one is cached."""
    ensure_packages(IMAGE_COMMANDS, progress, confirm=confirm)
    with building(cache, "base", progress):
        found = cached_base(cache)
        if found is not None:
            progress.stage(f"using the cached Debian {BASE_SUITE} base image {cache.base_archive}")
            return found
        why = "the cached one is incomplete or from another build" if cache.base_manifest.exists() else "none cached"
        progress.stage(f"making the Debian {BASE_SUITE} base image once ({why}; about two minutes)")
        return build_base(cache, progress)


@contextlib.contextmanager
def building(cache: ImageCache, name: str, progress: Progress) -> Iterator[None]:
    """Hold the lock of one cache entry: a second build of it waits and then finds the first one's result.

    Staging directories that a killed build left behind (their process is gone) are removed first.
    """
    locks = cache.root / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with (locks / f"{name}.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress.stage(f"{name}: another build of it is running; waiting for it to finish")
            fcntl.flock(lock, fcntl.LOCK_EX)
        sweep_leftovers(cache.root)
        yield


def sweep_leftovers(root: Path) -> None:
    """Remove ``.staging-*`` and ``.retired-*`` directories whose process (the number before the last) is gone."""
    for leftover in [*root.glob("*/.staging-*"), *root.glob("*/.retired-*")]:
        pid = leftover.name.rsplit("-", 2)[-2]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise ImageBuildError(
            f"{what}: debootstrap and buildah's vfs storage with chroot isolation need root; "
            "run it as root (as CI does), for example: sudo gitopsguard dev-cluster image"
        )


def build_base(cache: ImageCache, progress: Progress) -> BaseImage:
    """debootstrap a root, make it a one-layer image, and move the verified archive into the cache."""
    require_root(f"the Debian {BASE_SUITE} base image")
    staging = cache.base_dir.with_name(f".staging-{os.getpid()}-{time.monotonic_ns()}")
    staging.mkdir(parents=True)
    try:
        root = staging / "root"
        _debootstrap(root, cache.log_dir / "debootstrap.log", progress)
        packages = _trim_and_list(root)
        rootfs = staging / "rootfs.tar"
        run_logged(["tar", "--numeric-owner", "-C", str(root), "-cf", str(rootfs), "."],
                   cache.log_dir / "base-tar.log", progress, "packing the base root")  # fmt: skip
        shutil.rmtree(root)
        _commit_and_push(Buildah(cache), rootfs, staging / cache.base_archive.name, progress)
        rootfs.unlink()
        archive = staging / cache.base_archive.name
        digest = _sha256(archive)
        manifest = {"build": BASE_BUILD_ID, "reference": BASE_REFERENCE, "packages": packages,
                    "archive": {"size": archive.stat().st_size, "sha256": digest}}  # fmt: skip
        (staging / cache.base_manifest.name).write_text(json.dumps(manifest, indent=2) + "\n")
        move_into_place(staging, cache.base_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    progress.stage(f"cached the Debian {BASE_SUITE} base image in {cache.base_archive}")
    return BaseImage(cache.base_archive, digest)


def _debootstrap(root: Path, log: Path, progress: Progress) -> None:
    # The mirror is plain http: the Release file's signature, checked against Debian's keyring, is what makes
    # its packages trustworthy. Naming the keyring makes debootstrap fail without it instead of only warning.
    argv = ["debootstrap", "--variant=minbase", f"--keyring={DEBIAN_KEYRING}", f"--include={','.join(BASE_PACKAGES)}",
            "--components=main", BASE_SUITE, str(root), BASE_MIRROR]  # fmt: skip
    run_logged(argv, log, progress, f"debootstrap of Debian {BASE_SUITE} from {BASE_MIRROR}")


def _trim_and_list(root: Path) -> dict[str, str]:
    packages = _installed_versions(root)
    for relative in _TRIMMED:
        for entry in (root / relative).glob("*"):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    for relative in _EMPTIED:
        with contextlib.suppress(FileNotFoundError):
            (root / relative).unlink()
    (root / "etc" / "resolv.conf").touch()  # a bind-mount target for runtimes that give the container its own
    return packages


def _installed_versions(root: Path) -> dict[str, str]:
    query = ["dpkg-query", f"--admindir={root / 'var/lib/dpkg'}", "-W", "-f", "${Package}\t${Version}\n"]
    listed = subprocess.run(query, capture_output=True, text=True, check=False)
    versions = dict(line.split("\t", 1) for line in listed.stdout.splitlines() if "\t" in line)
    missing = [name for name in BASE_PACKAGES if name not in versions]
    if listed.returncode != 0 or missing:
        raise ImageBuildError(
            f"{root}: debootstrap finished but {', '.join(missing) or 'dpkg-query'} is not installed there "
            f"({listed.stderr.strip()[:200]}); nothing was cached"
        )
    return {name: versions[name] for name in sorted(versions) if name in (*BASE_PACKAGES, "python3.11")}


def _commit_and_push(buildah: Buildah, rootfs: Path, archive: Path, progress: Progress) -> None:
    log = buildah.cache.log_dir / "base-buildah.log"
    name = f"gitopsguard-base-{os.getpid()}-{time.monotonic_ns()}"
    container = buildah.run(["from", "--name", name, "scratch"], log, progress, "starting the base image")
    try:
        buildah.run(["add", container, str(rootfs), "/"], log, progress, "adding the base root")
        buildah.run(["config", "--env", f"PATH={_PATH}", "--cmd", "/bin/sh", container],
                    log, progress, "configuring the base image")  # fmt: skip
        buildah.run(["commit", "--rm", container, BASE_REFERENCE], log, progress, "committing the base image")
    except ImageBuildError:
        subprocess.run(buildah.argv("rm", container), capture_output=True, check=False)
        raise
    buildah.run(["push", BASE_REFERENCE, f"oci-archive:{archive}:{BASE_REFERENCE}"], log, progress,
                "writing the base image archive")  # fmt: skip
    buildah.run(["rmi", BASE_REFERENCE], log, progress, "removing the base image from buildah's storage")


def move_into_place(staging: Path, final: Path) -> None:
    """Replace ``final`` with the complete ``staging`` directory; a rename, so nobody sees half of either."""
    if final.exists():
        retired = final.with_name(f".retired-{os.getpid()}-{time.monotonic_ns()}")
        os.replace(final, retired)
        shutil.rmtree(retired, ignore_errors=True)
    try:
        os.replace(staging, final)
    except OSError as error:
        raise ImageBuildError(
            f"{final}: another build put its result here at the same moment ({error}); run the command again"
        ) from error


def run_logged(argv: Sequence[str], log: Path, progress: Progress, what: str, env: dict[str, str] | None = None) -> str:
    """Run ``argv`` with its output appended to ``log``; report build steps and a heartbeat while it runs."""
    log.parent.mkdir(parents=True, exist_ok=True)
    last = ""
    with log.open("a") as sink, heartbeat(progress, lambda: f"still {what}: {_clip(last)}"):
        sink.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n")
        try:
            child = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                     text=True, errors="replace")  # fmt: skip
        except OSError as error:
            raise ImageBuildError(f"{argv[0]}: cannot run it ({error}); install it and try again") from error
        for line in child.stdout or ():
            sink.write(line)
            last = line.strip() or last
            if line.startswith("STEP "):
                progress.detail(_clip(line.strip()))
        code = child.wait()
    if code != 0:
        raise ImageBuildError(
            f"{what}: `{' '.join(argv[:6])} ...` exited {code}; nothing was cached. "
            f"Fix the cause and run it again; the last lines of {log}:\n{_tail(log, 15)}"
        )
    return last


def _clip(line: str) -> str:
    return line[:160] or "(no output yet)"


def _tail(path: Path, count: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-count:])
    except OSError:
        return ""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
