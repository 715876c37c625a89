"""Building the Kubernetes binaries (control plane and node) and the pause program, and caching them atomically.

The cache is valid only when ``MANIFEST.json`` is present and every binary it lists has the recorded size.
Binaries are verified in a staging directory first and the directory is renamed into place last, so a
build or copy that fails halfway never leaves anything in the cache that ``up`` would run.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gitopsguard.devcluster import k8s_source
from gitopsguard.devcluster.paths import CONTROL_PLANE_BINARIES, KUBERNETES_VERSION, PAUSE_BINARY, CacheLayout
from gitopsguard.devcluster.progress import Progress, heartbeat
from gitopsguard.devcluster.system import BUILD_COMMANDS, FIXED_REFLECT2, ensure_packages
from gitopsguard.errors import BuildError

_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
# Names what went into the binaries; a cache built any other way is rebuilt. A cache from before the node
# (no kubelet, kube-scheduler, kube-proxy or pause in its manifest) is rebuilt too: every name is checked.
# The id itself is unchanged on purpose: the binaries it names are built the same way, and a newer cache
# stays valid for checkouts that need only the control plane (one machine, one shared cache).
BUILD_ID = f"kubernetes-{KUBERNETES_VERSION}+reflect2-1.0.2"
CACHED_FILES = (*CONTROL_PLANE_BINARIES, PAUSE_BINARY)
# pause.c prints this for `-v`; upstream's Makefile passes v$(TAG)-$(REV) the same way.
PAUSE_VERSION = "v3.4-gitopsguard"


def cached_binaries_valid(cache: CacheLayout) -> bool:
    try:
        manifest = json.loads(cache.manifest.read_text())
        return manifest.get("build") == BUILD_ID and all(
            cache.binary(name).stat().st_size == manifest["binaries"][name]["size"] for name in CACHED_FILES
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


def ensure_binaries(cache: CacheLayout, progress: Progress, *, confirm: Callable[[str], bool]) -> None:
    """Build and cache the control-plane binaries unless a valid cache already holds them."""
    if cached_binaries_valid(cache):
        progress.stage(f"using cached Kubernetes {KUBERNETES_VERSION} binaries in {cache.bin_dir}")
        return
    why = "the cached ones are incomplete or from another build" if cache.manifest.exists() else "none cached"
    progress.stage(f"building Kubernetes {KUBERNETES_VERSION} binaries once ({why}; about 8 minutes)")
    ensure_packages(BUILD_COMMANDS, progress, confirm=confirm)
    tree = k8s_source.download_source_tree(cache.work_dir, progress)
    build_into_cache(tree, cache, progress)
    # The unpacked tree and Go's build cache take gigabytes; keep only the 34 MB download for a rebuild.
    shutil.rmtree(tree.parent, ignore_errors=True)
    shutil.rmtree(cache.work_dir / "home", ignore_errors=True)


def build_into_cache(tree: Path, cache: CacheLayout, progress: Progress) -> None:
    """Run the Kubernetes Makefile in ``tree`` and move the verified binaries into the cache."""
    output_dir = tree / "_output" / "local" / "bin" / "linux" / _goarch()
    _use_fixed_reflect2(tree, progress)
    _run_make(tree, cache.work_dir, progress)
    _compile_pause(tree, output_dir)
    staging = _stage_binaries(output_dir, cache)
    if cache.bin_dir.exists():
        shutil.rmtree(cache.bin_dir)
    os.replace(staging, cache.bin_dir)
    progress.stage(f"cached {', '.join(CACHED_FILES)} in {cache.bin_dir}")


def _use_fixed_reflect2(tree: Path, progress: Progress, fixed: Path = FIXED_REFLECT2) -> None:
    """Swap the vendored modern-go/reflect2 v1.0.1 for Debian's v1.0.2.

    v1.0.1 reaches into Go's map internals in a way Go 1.18 changed: a kube-apiserver built with
    bookworm's Go 1.19 crashes ("unexpected fault address" in mapiterinit) once it serialises
    unstructured objects such as custom resources. v1.0.2 is the upstream fix and has the same API.
    vendor/modules.txt records only the version, so ``-mod=vendor`` builds accept the swap.
    """
    vendored = tree / "vendor" / "github.com" / "modern-go" / "reflect2"
    if not vendored.is_dir():
        return  # not a Kubernetes tree that vendors it (for example, the tests' stand-in tree)
    progress.stage(f"using reflect2 1.0.2 from {fixed} (Go 1.19 fix) in the vendored tree")
    for old in [*vendored.glob("*.go"), *vendored.glob("*.s")]:
        old.unlink()
    for new in [*fixed.glob("*.go"), *fixed.glob("*.s")]:
        if not new.name.endswith("_test.go"):
            shutil.copy2(new, vendored / new.name)


def _goarch() -> str:
    machine = platform.machine()
    if machine not in _GOARCH:
        raise BuildError(f"unsupported CPU architecture {machine!r}: the dev cluster builds for amd64 or arm64")
    return _GOARCH[machine]


def _run_make(tree: Path, work_dir: Path, progress: Progress) -> None:
    gopath = tree / ".go"
    (gopath / "src" / "k8s.io").mkdir(parents=True, exist_ok=True)
    link = gopath / "src" / "k8s.io" / "kubernetes"
    if not link.is_symlink():
        link.symlink_to(Path("..", "..", ".."))
    home = work_dir / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOPATH": str(gopath), "CGO_ENABLED": "0", "HOME": str(home)}
    log_path = work_dir / "build.log"
    targets = " ".join(f"cmd/{name}" for name in CONTROL_PLANE_BINARIES)
    progress.stage(f"building {targets} with make (log: {log_path})")
    with log_path.open("w") as log, heartbeat(progress, lambda: f"still building: {_last_line(log_path)}"):
        code = subprocess.run(
            ["make", f"WHAT={targets}"], cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT, check=False
        ).returncode
    if code != 0:
        raise BuildError(
            f"building Kubernetes {KUBERNETES_VERSION} failed (make exited {code}); nothing was cached. "
            f"Last lines of {log_path}:\n{_tail(log_path, 15)}"
        )


def _stage_binaries(output_dir: Path, cache: CacheLayout) -> Path:
    staging = cache.bin_dir.with_name(f".staging-{os.getpid()}-{time.monotonic_ns()}")
    staging.mkdir(parents=True)
    try:
        entries = {name: _stage_one(output_dir / name, staging / name) for name in CONTROL_PLANE_BINARIES}
        entries[PAUSE_BINARY] = _stage_one(output_dir / PAUSE_BINARY, staging / PAUSE_BINARY, _PAUSE)
        manifest = {"kubernetes": KUBERNETES_VERSION, "build": BUILD_ID, "binaries": entries}
        (staging / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


@dataclass(frozen=True)
class _VersionCheck:
    """How a built program says what it is: ``flag`` makes it print a line containing ``expected``."""

    flag: str
    expected: str


_KUBERNETES = _VersionCheck("--version", f"Kubernetes v{KUBERNETES_VERSION}")
_PAUSE = _VersionCheck("-v", f"pause.c {PAUSE_VERSION}")


def _stage_one(built: Path, staged: Path, check: _VersionCheck = _KUBERNETES) -> dict[str, object]:
    if not built.is_file():
        raise BuildError(f"{built}: make succeeded but did not produce this binary; nothing was cached")
    shutil.copy2(built, staged)
    version = subprocess.run([str(staged), check.flag], capture_output=True, text=True, check=False)
    if version.returncode != 0 or check.expected not in version.stdout:
        raise BuildError(
            f"{built}: `{check.flag}` printed {version.stdout.strip()!r} (exit {version.returncode}), "
            f"expected {check.expected}; nothing was cached"
        )
    digest = hashlib.sha256(staged.read_bytes()).hexdigest()
    return {"size": staged.stat().st_size, "sha256": digest, "version": version.stdout.strip()}


def _compile_pause(tree: Path, output_dir: Path) -> None:
    """``gcc -static`` of the tree's pause.c, with upstream's flags: the sandbox image then needs no libc."""
    source = tree / "build" / "pause" / "linux" / "pause.c"
    if not source.is_file():
        raise BuildError(f"{source}: not in the Kubernetes tree; nothing was cached (is the download complete?)")
    output_dir.mkdir(parents=True, exist_ok=True)
    command = ["gcc", "-Os", "-Wall", "-Werror", "-static", f"-DVERSION={PAUSE_VERSION}",
               "-o", str(output_dir / PAUSE_BINARY), str(source)]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as error:
        raise BuildError(f"{source}: cannot run gcc ({error.strerror}); install Debian's gcc and libc6-dev") from error
    if result.returncode != 0:
        raise BuildError(
            f"{source}: `gcc -static` failed (exit {result.returncode}); nothing was cached. "
            f"Install Debian's libc6-dev if static libc is missing:\n{result.stderr.strip()[-2000:]}"
        )


def _last_line(path: Path) -> str:
    lines = _tail(path, 1)
    return lines.strip()[:160] or "(no output yet)"


def _tail(path: Path, count: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-count:])
    except OSError:
        return ""
