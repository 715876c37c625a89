"""Time gitopsguard's image build: cold (no base, no archive), warm (nothing changed), after a one-line change.

    PYTHONPATH=$PWD .venv/bin/python bench/image_build.py [--cold]

Without ``--cold`` it uses the default image cache (~/.cache/gitopsguard/images) as it is; with it, a new
empty cache in a temporary directory (about 1.5 GB while it runs, removed after), so the Debian base is made
too. The change is made in a copy of the build context, under another image name, so the real cache entry is
left alone. Needs root (buildah's vfs storage and chroot isolation), as `gitopsguard dev-cluster image` does.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gitopsguard.devcluster.base_image import ImageCache, ensure_base
from gitopsguard.devcluster.image import ImageSpec, build, gitopsguard_image
from gitopsguard.devcluster.image_context import context_entries
from gitopsguard.devcluster.progress import StagedProgress


def timed(what: str, action: Callable[[], object]) -> float:
    start = time.monotonic()
    action()
    seconds = time.monotonic() - start
    print(f"== {what}: {seconds:.1f} s", file=sys.stderr, flush=True)
    return seconds


def changed_copy(spec: ImageSpec, into: Path) -> ImageSpec:
    for relative in context_entries(spec.context):
        source, target = spec.context / relative, into / relative
        if source.is_dir() and not source.is_symlink():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target, follow_symlinks=False)
    with (into / "gitopsguard" / "__init__.py").open("a") as init:
        init.write("# a one-line change for bench/image_build.py\n")
    return ImageSpec("docker.io/library/gitopsguard-bench:dev", into)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="start from an empty image cache")
    cold = parser.parse_args().cold
    scratch = Path(tempfile.mkdtemp(prefix="image-bench-"))
    cache = ImageCache(scratch / "cache") if cold else ImageCache.default()
    progress, no = StagedProgress(), (lambda _: False)
    spec = gitopsguard_image()
    try:
        results = {}
        if cold:
            results["cold: Debian base (debootstrap, buildah commit and push)"] = timed(
                "base", lambda: ensure_base(cache, progress, confirm=no)
            )
        results["image (cold when --cold, else as the cache is)"] = timed(
            "image", lambda: build(spec, cache, progress, confirm=no)
        )
        results["warm: nothing changed"] = timed("warm", lambda: build(spec, cache, progress, confirm=no))
        changed = changed_copy(spec, scratch / "context")
        results["after a one-line change (base cached)"] = timed(
            "changed", lambda: build(changed, cache, progress, confirm=no)
        )
        shutil.rmtree(cache.built_dir(changed.cache_name), ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for what, seconds in results.items():
        print(f"| {what} | {seconds:.1f} s |")


if __name__ == "__main__":
    main()
