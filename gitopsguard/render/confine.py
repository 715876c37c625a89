"""Kustomizations may read only the checkout (issue 15.16: a ``file://`` base, a ``..`` path and a
symlinked folder each rendered objects that are in no commit).

Before kustomize runs, every kustomization it would load is read here (strictly: ``kustomization.py``
refuses any file kustomize could read differently), from the rendered one down through every folder it
names, and EVERY string in it, under any key, is checked as the path or URL it might be. An earlier version
checked only the fields known to hold paths, and each way kustomize finds a field that list did not know (a
merge key, another case, an entry that looked like inline YAML) read a file outside the commit; a list of
what is data, never a path (labels, annotations, names, images, inline patch bodies, ...), fails closed
where a list of paths failed open.

A URL (``file://`` included), an absolute path, or a path that resolves (symlinks followed) outside the
checkout is refused with the kustomization file and line. Remote http(s)/git bases pass only under
``resources``/``bases``/``components`` and only when the operator allows them (``allow_remote_bases``);
``file://`` and local paths outside never do. kustomize's own ``LoadRestrictionsRootOnly`` stays on as a
second wall, but it lets bases reach anywhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from gitopsguard.errors import RenderError
from gitopsguard.render.files import resolved, shown
from gitopsguard.render.kustomization import read_kustomization, read_plugin_configurations
from gitopsguard.render.settings import RenderSettings

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_BASES = ("resources", "bases", "components")  # where kustomize fetches remote bases
_PLUGINS = ("transformers", "generators", "validators")  # a file here holds plugin configurations
# Keys whose values are data to kustomize, never a file or base to load: labels and annotations, names,
# images, counts, selectors and field paths, generator literals, inline patch bodies and helm values.
DATA_KEYS = frozenset({
    "apiversion", "kind", "commonlabels", "labels", "commonannotations", "annotations", "nameprefix",
    "namesuffix", "namespace", "images", "replicas", "literals", "patch", "delimiter", "valuesinline",
    "labelselector", "annotationselector", "fieldpath", "fieldpaths",
})  # fmt: skip
# Forms kustomize loads from elsewhere even when the checkout holds a path of that name: any scheme with or
# without `//` (Go fetches `https:/x`; a colon then a space is YAML-looking text, not a scheme), scp-like git
# (user@host:path), and github.com in any case (kustomize clones it in preference to a local folder).
_URL = re.compile(r"^(?:[a-zA-Z][\w+.-]*:(?! )|[\w.-]+@[\w.-]+:|github\.com(?:[/:]|$))", re.IGNORECASE)
_REMOTE_BASE = re.compile(r"\?ref=|//")
# A host name first (example.com/org/repo): remote only when no such path is in the checkout.
_HOST_PATH = re.compile(r"^[\w-]+(?:\.[\w-]+)+/")
MAX_KUSTOMIZATIONS = 500
MAX_STRINGS = 10_000  # each costs a path resolution (~80 us; 200,000 strings in one file took 17 s)


@dataclass(frozen=True)
class Reference:
    text: str
    file: Path  # the kustomization or plugin configuration it is in, for messages
    line: int
    folder: Path  # where kustomize resolves it from: the kustomization's folder
    field: str  # the kustomization's top-level field it is under, lower case

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def kustomization_file(directory: Path) -> Path | None:
    return next((directory / n for n in KUSTOMIZATION_FILES if (directory / n).is_file()), None)


def require_confined(directory: Path, root: Path, settings: RenderSettings) -> None:
    """Raise RenderError (kustomization file and line first) when any kustomization reachable from
    ``directory``, or a plugin configuration file one names, names something outside the checkout at ``root``."""
    pending, seen, budget = [directory], {directory}, _Budget()
    while pending:
        kustomization = kustomization_file(pending.pop())
        if kustomization is None:
            continue
        for reference in _references(read_kustomization(kustomization, root, settings), kustomization, root):
            target = _checked(budget.spend(reference), root, settings)
            if target is None:
                continue
            if target.is_dir() and target not in seen:  # any folder named may be loaded as a kustomization
                if len(seen) >= MAX_KUSTOMIZATIONS:
                    raise RenderError(f"{reference.where}: more than {MAX_KUSTOMIZATIONS} kustomizations in one "
                                      "render")  # fmt: skip
                seen.add(target)
                pending.append(target)
            elif reference.field in _PLUGINS and target.is_file():
                _require_confined_plugins(target, reference, root, settings, budget)


def _require_confined_plugins(
    configs: Path, naming: Reference, root: Path, settings: RenderSettings, budget: _Budget
) -> None:
    """A file under transformers/generators/validators holds plugin configurations, whose paths kustomize
    resolves from the kustomization's folder and may fetch over http(s)."""
    for document in read_plugin_configurations(configs, root, settings):
        for reference in _references(document, configs, root, folder=naming.folder, under=naming.field):
            _checked(budget.spend(reference), root, settings)


class _Budget:
    """Strings checked in one render: each costs a path resolution."""

    def __init__(self) -> None:
        self.checked = 0

    def spend(self, reference: Reference) -> Reference:
        self.checked += 1
        if self.checked > MAX_STRINGS:
            raise RenderError(f"{reference.where}: more than {MAX_STRINGS} strings to check in the kustomizations "
                              "of one render; render smaller paths")  # fmt: skip
        return reference


def _checked(reference: Reference, root: Path, settings: RenderSettings) -> Path | None:
    """Where a reference leads inside the checkout (None for an allowed remote base); RenderError otherwise."""
    where, text = reference.where, reference.text
    if "\x00" in text:
        raise RenderError(f"{where}: a value holds a NUL character; remove it")
    if text.startswith("/"):
        raise RenderError(f"{where}: {text!r} is an absolute path; a kustomization may name only files in the "
                          "repository, by a path relative to it")  # fmt: skip
    target = _resolved_both_ways(reference.folder, text, where, root)
    if _remote(text, target):
        if settings.allow_remote_bases and reference.field in _BASES and not text.lower().startswith("file:"):
            return None
        raise RenderError(f"{where}: {text!r} is a remote or file:// reference; renders read only the commit "
                          "(the operator may allow remote bases, never file://)")  # fmt: skip
    if not target.is_relative_to(root):
        raise _leaves(where, text)
    return target


def _resolved_both_ways(folder: Path, text: str, where: str, root: Path) -> Path:
    """The path as kustomize reads it (Go's filepath.Join drops `x/..` before any symlink is followed), which
    must lie inside the checkout read the other way too (each symlink followed before the `..` after it)."""
    physical = resolved(folder / text, f"{where}: {text!r}", RenderError)
    lexical = resolved(Path(os.path.normpath(folder / text)), f"{where}: {text!r}", RenderError)
    if not physical.is_relative_to(root) and not _remote(text, physical):
        raise _leaves(where, text)
    return lexical


def _leaves(where: str, text: str) -> RenderError:
    return RenderError(f"{where}: {text!r} leaves the checkout (through `..` or a symlink); a kustomization may "
                       "name only files in the repository (an inline patch belongs under "
                       "`patches: - patch:`)")  # fmt: skip


def _remote(text: str, target: Path) -> bool:
    if "\n" in text:  # Go's URL parser refuses a line break: this can only be inline text or a path
        return False
    if _URL.search(text):
        return True
    return bool(_REMOTE_BASE.search(text)) or (bool(_HOST_PATH.search(text)) and not target.exists())


def _references(
    top: yaml.Node | None, file: Path, root: Path, *, folder: Path | None = None, under: str | None = None
) -> Iterator[Reference]:
    """Every string of a kustomization (or of a plugin configuration, whose strings all count as ``under``
    the kustomization's field that named it) outside DATA_KEYS; a ``name=path`` string also as its path."""
    if not isinstance(top, yaml.MappingNode):
        return
    shown_file, folder = Path(shown(file, root)), folder or file.parent
    for key, value in top.value:
        field = under or str(key.value).lower()
        for scalar in _strings(key, value):
            line = scalar.start_mark.line + 1
            yield Reference(scalar.value, shown_file, line, folder, field)
            if "=" in scalar.value:  # configMapGenerator files: `key=path` (kustomize picks one reading)
                yield Reference(scalar.value.partition("=")[2], shown_file, line, folder, field)


def _strings(key: yaml.Node, value: yaml.Node) -> Iterator[yaml.ScalarNode]:
    pending = [(key, value)]
    while pending:
        key, node = pending.pop()
        if str(key.value).lower() in DATA_KEYS:
            continue
        if isinstance(node, yaml.ScalarNode):
            yield node
        elif isinstance(node, yaml.SequenceNode):
            pending.extend((key, item) for item in reversed(node.value))
        elif isinstance(node, yaml.MappingNode):
            pending.extend(reversed(node.value))
