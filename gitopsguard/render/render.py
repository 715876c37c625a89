"""The render stage's entry point: pick kustomize or plain YAML, then check the result as a whole."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gitopsguard.errors import RenderError
from gitopsguard.model import Manifest, ObjectKey
from gitopsguard.render import kustomize, plain
from gitopsguard.render.memo import DocumentMemo


@dataclass(frozen=True)
class Rendered:
    path: str
    manifests: tuple[Manifest, ...]


def render(root: Path, path: str, memo: DocumentMemo | None = None) -> Rendered:
    """The desired objects of ``path`` inside the checkout at ``root`` (parsing only documents ``memo``
    does not have from the last render)."""
    directory = (root / path).resolve()
    if not directory.is_relative_to(root.resolve()):
        raise RenderError(f"{path}: the path leaves the repository")
    if not directory.is_dir():
        raise RenderError(f"{path}: no such directory in the repository")
    if kustomize.kustomization_file(directory) is not None:
        manifests = kustomize.build(directory, root.resolve(), memo)
    else:
        manifests = plain.read_directory(directory, root.resolve(), memo)
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
