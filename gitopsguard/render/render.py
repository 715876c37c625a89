"""The render stage's entry point: pick kustomize or plain YAML, then check the result as a whole."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gitopsguard.documents.bounds import Budget
from gitopsguard.documents.files import resolved
from gitopsguard.errors import RenderError
from gitopsguard.model import Manifest, ObjectKey
from gitopsguard.render import kustomize, plain
from gitopsguard.render.memo import DocumentMemo
from gitopsguard.render.settings import DEFAULT, RenderSettings


@dataclass(frozen=True)
class Rendered:
    path: str
    manifests: tuple[Manifest, ...]


def render(root: Path, path: str, memo: DocumentMemo | None = None, *, settings: RenderSettings = DEFAULT) -> Rendered:
    """The desired objects of ``path`` inside the checkout at ``root`` (parsing only documents ``memo``
    does not have from the last render), within the bounds of ``settings``. Raises RenderError, naming the
    file (and line), for anything it cannot or may not render."""
    checkout = resolved(root, str(root), RenderError)
    directory = resolved(root / path, path, RenderError)
    if not directory.is_relative_to(checkout):
        raise RenderError(f"{path}: the path leaves the repository")
    if directory != Path(os.path.normpath(checkout / path)):
        # the folder must be the one its path names: Units' folders are kept apart by their paths
        # (units/root.overlapping), and a symlink would hand one Unit another's files (or the root path's)
        raise RenderError(
            f"{path.rstrip('/')}: is a symlink, or lies under one; a folder to render must be a "
            "folder of the commit itself: replace the symlink with the folder, or name its target"
        )
    if not directory.is_dir():
        raise RenderError(f"{path}: no such directory in the repository")
    budget = Budget(settings)  # one allowance for the whole render
    if kustomize.kustomization_file(directory) is not None:
        manifests = kustomize.build(directory, checkout, memo, budget, settings=settings)
    else:
        manifests = plain.read_directory(directory, checkout, memo, budget)
    _require_unique(manifests)
    return Rendered(path, tuple(manifests))


def _require_unique(manifests: list[Manifest]) -> None:
    seen: dict[ObjectKey, Manifest] = {}
    for manifest in manifests:
        first = seen.setdefault(manifest.key, manifest)
        if first is not manifest:
            raise RenderError(
                f"{manifest.origin}: {manifest.key} is already defined at {first.origin}; "
                "an object may be defined once (remove one, or merge them)"
            )
