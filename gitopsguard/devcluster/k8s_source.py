"""Fetching the Kubernetes 1.20.2 source tree from Debian's ``kubernetes`` source package."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from gitopsguard.devcluster.progress import Progress
from gitopsguard.errors import BuildError

DEBIAN_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
GITOPSGUARD_SOURCES = Path("/etc/apt/sources.list.d/gitopsguard-src.sources")
SOURCE_PACKAGE = "kubernetes"


def deb_src_entry(debian_sources: str) -> str:
    """A deb-src stanza for bookworm's main pointing at the mirror of the existing ``deb`` entry."""
    for stanza in re.split(r"\n\s*\n", debian_sources):
        fields = dict(_fields(stanza))
        suites = fields.get("Suites", "").split()
        if fields.get("Types", "").split() == ["deb"] and "bookworm" in suites:
            lines = [
                "Types: deb-src",
                f"URIs: {fields['URIs']}",
                "Suites: bookworm bookworm-updates",
                "Components: main",
            ]
            if "Signed-By" in fields:
                lines.append(f"Signed-By: {fields['Signed-By']}")
            return "\n".join(lines) + "\n"
    raise BuildError(
        f"{DEBIAN_SOURCES}: no `Types: deb` entry for bookworm found; add a deb-src line for "
        "bookworm main by hand, run `apt-get update`, then `gitopsguard dev-cluster up` again"
    )


def _fields(stanza: str) -> list[tuple[str, str]]:
    pairs = []
    for line in stanza.splitlines():
        if ":" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition(":")
            pairs.append((key.strip(), value.strip()))
    return pairs


def enable_source_packages(progress: Progress) -> None:
    if GITOPSGUARD_SOURCES.exists() or _deb_src_already_enabled():
        return
    if not DEBIAN_SOURCES.exists():
        raise BuildError(
            f"{DEBIAN_SOURCES} not found: this machine is not the Debian bookworm the dev cluster "
            "is built on; add a deb-src entry for bookworm main yourself and retry"
        )
    progress.stage(f"enabling Debian source packages in {GITOPSGUARD_SOURCES}")
    GITOPSGUARD_SOURCES.write_text(deb_src_entry(DEBIAN_SOURCES.read_text()))
    _run(["apt-get", "update", "-q"], "apt-get update")


def _deb_src_already_enabled() -> bool:
    sources = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
    for path in sources:
        if path.is_file() and re.search(r"^\s*(Types:.*deb-src|deb-src\s)", path.read_text(), re.M):
            return True
    return False


def download_source_tree(work_dir: Path, progress: Progress) -> Path:
    """Download the orig tarball into ``work_dir`` and unpack it; returns the tree's root."""
    enable_source_packages(progress)
    downloads = work_dir / "download"
    downloads.mkdir(parents=True, exist_ok=True)
    if not list(downloads.glob("kubernetes_*.orig.tar.*")):
        progress.stage("downloading Debian's kubernetes source package (about 34 MB)")
        _run(["apt-get", "source", "--download-only", SOURCE_PACKAGE], "apt-get source", cwd=downloads)
    (tarball,) = downloads.glob("kubernetes_*.orig.tar.*")
    tree_parent = work_dir / "tree"
    shutil.rmtree(tree_parent, ignore_errors=True)
    tree_parent.mkdir(parents=True)
    progress.stage(f"unpacking {tarball.name}")
    _run(["tar", "-xf", str(tarball), "-C", str(tree_parent)], f"unpacking {tarball.name}")
    (tree,) = [p for p in tree_parent.iterdir() if p.is_dir()]
    return tree


def _run(command: list[str], what: str, cwd: Path | None = None) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=cwd)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-8:])
        raise BuildError(f"{what} failed (exit {result.returncode}):\n{tail}")
