"""Kustomizations may read only the checkout (issue 15.16: a ``file://`` base, a ``..`` path and a
symlinked folder each rendered objects that are in no commit).

Before kustomize runs, every kustomization it would load is read here, from the rendered one down through
its resources, bases and components, and every path or URL in a field that names a file or a base is
checked: a URL (``file://`` included), an absolute path, or a path that resolves (symlinks followed) outside
the checkout is refused with the kustomization file and line. Remote http(s)/git bases pass only when the
operator allows them (``allow_remote_bases``); ``file://`` and local paths outside never do. kustomize's own
``LoadRestrictionsRootOnly`` stays on as a second wall, but it lets bases reach anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from gitopsguard.errors import RenderError
from gitopsguard.render.files import read_bounded, resolved, shown
from gitopsguard.render.settings import RenderSettings

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_BASES = ("resources", "bases", "components")  # a folder here is another kustomization to check
_PATH_LISTS = ("crds", "configurations", "patchesStrategicMerge", "transformers", "generators", "validators")
_PATH_ITEMS = ("patches", "patchesJson6902", "replacements")  # lists of mappings with a `path`
_GENERATORS = ("configMapGenerator", "secretGenerator")
_HELM = ("helmCharts", "helmChartInflationGenerator")
# kustomize's remote forms: a scheme (https://, git::, file://, ssh://), scp-like git (user@host:path), or
# a host name first (github.com/org/repo, example.com/x?ref=y).
_REMOTE = re.compile(r"^(?:[a-zA-Z][\w+.-]*:|[\w.-]+@[\w.-]+:|[\w-]+(?:\.[\w-]+)+/)|\?ref=|//")
MAX_KUSTOMIZATIONS = 500


@dataclass(frozen=True)
class Reference:
    text: str
    line: int
    base: bool  # may be a kustomization folder (resources, bases, components)


def kustomization_file(directory: Path) -> Path | None:
    return next((directory / n for n in KUSTOMIZATION_FILES if (directory / n).is_file()), None)


def require_confined(directory: Path, root: Path, settings: RenderSettings) -> None:
    """Raise RenderError (kustomization file and line first) when any kustomization reachable from
    ``directory`` names something outside the checkout at ``root``."""
    pending, seen = [directory], {directory}
    while pending:
        folder = pending.pop()
        kustomization = kustomization_file(folder)
        if kustomization is None:
            continue
        for reference in _references(kustomization, root, settings):
            target = _checked(reference, kustomization, root, settings)
            if target is not None and reference.base and target.is_dir() and target not in seen:
                if len(seen) >= MAX_KUSTOMIZATIONS:
                    raise RenderError(f"{shown(kustomization, root)}:{reference.line}: more than "
                                      f"{MAX_KUSTOMIZATIONS} kustomizations in one render")  # fmt: skip
                seen.add(target)
                pending.append(target)


def _checked(reference: Reference, kustomization: Path, root: Path, settings: RenderSettings) -> Path | None:
    """Where a reference leads inside the checkout (None for an allowed remote base); RenderError otherwise."""
    where, text = f"{shown(kustomization, root)}:{reference.line}", reference.text
    if text.startswith("/"):
        raise RenderError(f"{where}: {text!r} is an absolute path; a kustomization may name only files in the "
                          "repository, by a path relative to it")  # fmt: skip
    target = resolved(kustomization.parent / text, f"{where}: {text!r}", RenderError)
    if target.exists() or not _REMOTE.search(text):
        if not target.is_relative_to(root):
            raise RenderError(f"{where}: {text!r} leaves the checkout (through `..` or a symlink); a "
                              "kustomization may name only files in the repository")  # fmt: skip
        return target
    if settings.allow_remote_bases and reference.base and not text.lower().startswith("file:"):
        return None
    raise RenderError(f"{where}: {text!r} is a remote or file:// reference; renders read only the commit "
                      "(the operator may allow remote bases, never file://)")  # fmt: skip


def _references(kustomization: Path, root: Path, settings: RenderSettings) -> Iterator[Reference]:
    text = read_bounded(kustomization, root, RenderError, settings)
    try:
        node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as error:  # kustomize reports it better; it will refuse the file anyway
        del error
        return
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield from _field(str(key.value), value)


def _field(name: str, value: yaml.Node) -> Iterator[Reference]:
    if name in _BASES or name in _PATH_LISTS:
        for item in _items(value):
            if isinstance(item, yaml.ScalarNode) and not _inline(item.value):
                yield Reference(item.value, item.start_mark.line + 1, name in _BASES)
            elif isinstance(item, yaml.MappingNode):  # an inline plugin configuration may name files too
                yield from _paths_in(item)
    elif name in _PATH_ITEMS or name in _GENERATORS or name in _HELM or name in ("openapi", "helmGlobals"):
        for item in _items(value) if isinstance(value, yaml.SequenceNode) else [value]:
            yield from _paths_in(item)


def _paths_in(item: yaml.Node) -> Iterator[Reference]:
    """The file paths a patch, generator, helm chart or openapi entry names."""
    if not isinstance(item, yaml.MappingNode):
        return
    for key, value in item.value:
        scalars = [v for v in _items(value) if isinstance(v, yaml.ScalarNode)]
        if key.value in ("path", "env", "envs", "valuesFile", "additionalValuesFiles", "chartHome", "configHome",
                         "repo"):  # fmt: skip
            yield from (Reference(s.value, s.start_mark.line + 1, False) for s in scalars)
        elif key.value == "files":  # `name=path` or `path`: both readings are checked, kustomize picks one
            for s in scalars:
                yield Reference(s.value, s.start_mark.line + 1, False)
                if "=" in s.value:
                    yield Reference(s.value.partition("=")[2], s.start_mark.line + 1, False)


def _items(node: yaml.Node) -> list[yaml.Node]:
    return list(node.value) if isinstance(node, yaml.SequenceNode) else [node]


def _inline(text: str) -> bool:
    """An inline patch or plugin config (YAML text) rather than a path."""
    return "\n" in text or ": " in text
