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
``file://`` and local paths outside never do. Plugin configurations (transformers/generators/validators: a file,
a string kustomize reads as inline configurations, or any file of a folder reached through such a field, at any
depth) are checked the same way, and never allow a URL: kustomize fetches their ``path:`` over http, and Go
sends loopback addresses past any proxy (red-team round 2, k1-k3). kustomize's own ``LoadRestrictionsRootOnly``
stays on as a second wall, but it lets bases reach anywhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from gitopsguard.documents.files import resolved, shown
from gitopsguard.errors import RenderError
from gitopsguard.render.kustomization import (
    read_inline_plugin_configurations,
    read_kustomization,
    read_plugin_configurations,
)
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
# A URL anywhere in a string, even inside multi-line text: with remote bases off no string of a kustomization or
# plugin configuration outside DATA_KEYS may hold one (a general wall behind the per-field checks).
_URL_INSIDE = re.compile(r"[a-z][\w+.-]*://", re.IGNORECASE)
# A host name first (example.com/org/repo): remote only when no such path is in the checkout.
_HOST_PATH = re.compile(r"^[\w-]+(?:\.[\w-]+)+/")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_KUSTOMIZATIONS = 500
MAX_STRINGS = 10_000  # each costs a path resolution (~80 us; 200,000 strings in one file took 17 s)


@dataclass(frozen=True)
class Reference:
    text: str
    file: Path  # the kustomization or plugin configuration it is in, for messages
    line: int
    folder: Path  # where kustomize resolves it from: the kustomization's folder
    field: str  # the kustomization's top-level field it is under, lower case
    block: bool = False  # a literal or folded block scalar: its text begins on the line after
    entry: bool = False  # a field's own string or list item in a kustomization (not nested deeper)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def kustomization_file(directory: Path) -> Path | None:
    return next((directory / n for n in KUSTOMIZATION_FILES if (directory / n).is_file()), None)


def require_confined(directory: Path, root: Path, settings: RenderSettings) -> None:
    """Raise RenderError (kustomization file and line first) when any kustomization reachable from
    ``directory``, or a plugin configuration one names, names something outside the checkout at ``root``."""
    pending: list[tuple[Path, str | None]] = [(directory, None)]
    seen: set[tuple[Path, str | None]] = {(directory, None)}
    budget = _Budget()
    while pending:
        folder, plugin = pending.pop()
        kustomization = kustomization_file(folder)
        if kustomization is None:
            continue
        for found in _references(read_kustomization(kustomization, root, settings), kustomization, root):
            reference = replace(found, field=plugin) if plugin else found  # below a plugin field, all is plugins
            for target, under in _followed(budget.spend(reference), kustomization, root, settings, budget):
                if (target, under) not in seen:
                    if len(seen) >= MAX_KUSTOMIZATIONS:
                        raise RenderError(f"{reference.where}: more than {MAX_KUSTOMIZATIONS} kustomizations in "
                                          "one render")  # fmt: skip
                    seen.add((target, under))
                    pending.append((target, under))


def _followed(
    reference: Reference, kustomization: Path, root: Path, settings: RenderSettings, budget: _Budget
) -> Iterator[tuple[Path, str | None]]:
    """The folders a reference leads to, with the plugin field they were reached through (if any), after
    checking what it names; a plugin configuration, in a file or inline, is checked here."""
    plugin = reference.field if reference.field in _PLUGINS else None
    if plugin and reference.entry and _inline(reference):
        where = f"{reference.where} inline"
        for document in read_inline_plugin_configurations(reference.text, where, settings):
            _require_confined_configuration(document, kustomization, reference, root, settings, budget)
        return
    target = _checked(reference, root, settings)
    if target is None:
        return
    if plugin and reference.entry and not target.exists():  # kustomize might read it another way (inline, remote)
        raise RenderError(f"{reference.where}: {reference.text!r} names no file or folder in the repository; a "
                          f"{plugin} entry is a path in the repository or an inline configuration")  # fmt: skip
    if target.is_dir():  # any folder named may be loaded as a kustomization
        yield target, plugin
    elif plugin and target.is_file():
        for document in read_plugin_configurations(target, root, settings):
            _require_confined_configuration(document, target, replace(reference, block=False, line=0), root,
                                            settings, budget)  # fmt: skip


def _inline(reference: Reference) -> bool:
    """Whether kustomize takes a plugin entry for inline configurations: it does for any text that parses as
    YAML objects. Text that only PyYAML cannot parse is taken for inline too (and then refused). Read as events,
    stopping at the first collection, so that no nesting is built."""
    try:
        return any(isinstance(event, yaml.CollectionStartEvent) for event in yaml.parse(reference.text, Loader=_LOADER))
    except yaml.YAMLError:
        return True


def _require_confined_configuration(
    document: yaml.MappingNode, file: Path, naming: Reference, root: Path, settings: RenderSettings, budget: _Budget
) -> None:
    """A plugin configuration's paths are resolved from the kustomization's folder and may be fetched over
    http(s): each is checked as a reference under the plugin field, where no URL is ever allowed."""
    offset = naming.line + (1 if naming.block else 0) - (1 if naming.line else 0)
    for reference in _references(document, file, root, folder=naming.folder, under=naming.field, offset=offset):
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
    remote_base = settings.allow_remote_bases and reference.field in _BASES
    if _URL_INSIDE.search(text) and not (remote_base and _remote(text, target)):
        raise RenderError(f"{where}: {text!r} holds a URL; renders read only the commit (the operator may allow "
                          "remote bases under resources, bases or components, never elsewhere)")  # fmt: skip
    if _remote(text, target):
        if remote_base and not text.lower().startswith("file:"):
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
    # `//` and `?ref=` alone make nothing remote: kustomize loads `../..//outside` as a local folder (k6)
    return bool(_HOST_PATH.search(text)) and not target.exists()


def _references(
    top: yaml.Node | None,
    file: Path,
    root: Path,
    *,
    folder: Path | None = None,
    under: str | None = None,
    offset: int = 0,
) -> Iterator[Reference]:
    """Every string of a kustomization (or of a plugin configuration, whose strings all count as ``under``
    the kustomization's field that named it) outside DATA_KEYS; a ``name=path`` string also as its path."""
    if not isinstance(top, yaml.MappingNode):
        return
    shown_file, folder = Path(shown(file, root)), folder or file.parent
    for key, value in top.value:
        field = under or str(key.value).lower()
        entries = {id(item) for item in (value.value if isinstance(value, yaml.SequenceNode) else [value])}
        for scalar in _strings(key, value):
            line = scalar.start_mark.line + 1 + offset  # offset: lines before an inline configuration
            entry = under is None and id(scalar) in entries
            yield Reference(scalar.value, shown_file, line, folder, field, scalar.style in ("|", ">"), entry)
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
