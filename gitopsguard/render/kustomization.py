"""Reading a kustomization exactly as kustomize reads it, or refusing it.

confine.py checks what a kustomization names; that check is only as good as our reading of the file. kustomize
reads it with go-yaml and Go's JSON decoding, which differ from PyYAML in ways a commit can aim for (the
red-team's bypasses: a UTF-16 file PyYAML could not parse and so was skipped, a `<<` merge key, `Resources:`
matched case-insensitively by Go). Rather than mirror each difference, anything where the two readings could
part is refused with file and line: text that is not plain UTF-8 (a byte-order mark, control characters, the
line breaks only one side knows), anchors, aliases and merge keys, explicit tags and directives, more than one
document, keys that are not plain ASCII text or that repeat when case is ignored, and a top level that is not a
mapping. A legitimate kustomization needs none of these; what is left reads the same on both sides.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

import yaml

from gitopsguard.documents.files import read_bounded_bytes, shown
from gitopsguard.errors import RenderError
from gitopsguard.render.settings import RenderSettings

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# C0/C1 controls but tab, LF and CR; NEL, LS and PS (line breaks to YAML 1.1, not to go-yaml); a BOM anywhere.
_ODD_CHARACTER = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufeff]")
_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)  # UTF-32's begin with UTF-16's
_FIX = "; write the kustomization as plain UTF-8 YAML, one document, without anchors, aliases, merge keys or tags"


def read_kustomization(path: Path, root: Path, settings: RenderSettings) -> yaml.MappingNode | None:
    """The kustomization's top-level mapping (None for an empty file); RenderError naming file and line for
    anything kustomize might read differently."""
    documents = _read(path, root, settings, many=False)
    return documents[0] if documents else None


def read_plugin_configurations(path: Path, root: Path, settings: RenderSettings) -> list[yaml.MappingNode]:
    """The plugin configurations (one a document) of a file a kustomization names under transformers,
    generators or validators, read as strictly as a kustomization."""
    return _read(path, root, settings, many=True)


def read_inline_plugin_configurations(text: str, where: str, settings: RenderSettings) -> list[yaml.MappingNode]:
    """The plugin configurations written inline as one string under transformers, generators or validators
    (kustomize takes any entry that parses as objects for inline configurations), read as strictly as a file;
    ``where`` is the kustomization and line of the string."""
    return _parsed(_plain_text(text.encode("utf-8", errors="surrogatepass"), where), where, settings, many=True)


def _read(path: Path, root: Path, settings: RenderSettings, *, many: bool) -> list[yaml.MappingNode]:
    where = shown(path, root)
    text = _plain_text(read_bounded_bytes(path, root, RenderError, settings), where)
    return _parsed(text, where, settings, many=many)


def _parsed(text: str, where: str, settings: RenderSettings, *, many: bool) -> list[yaml.MappingNode]:
    _require_plain_events(text, where, settings, many=many)
    found = []
    for node in yaml.compose_all(text, Loader=_LOADER):  # the events parsed, so this cannot fail
        if not isinstance(node, yaml.MappingNode):
            raise RenderError(f"{where}:{node.start_mark.line + 1}: must be a mapping of fields{_FIX}")
        _require_plain_keys(node, where)
        found.append(node)
    return found


def _plain_text(data: bytes, where: str) -> str:
    if data.startswith(_BOMS):
        raise RenderError(f"{where}:1: starts with a byte-order mark (not UTF-8 text kustomize and this check "
                          f"read alike){_FIX}")  # fmt: skip
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise RenderError(f"{where}:{line}: not UTF-8 text (byte {e.start}){_FIX}") from e
    if odd := _ODD_CHARACTER.search(text):
        line = text.count("\n", 0, odd.start()) + 1
        raise RenderError(f"{where}:{line}: holds the character {ascii(odd.group())[1:-1]}, which YAML readers "
                          f"disagree on{_FIX}")  # fmt: skip
    return text


def _require_plain_events(text: str, where: str, settings: RenderSettings, *, many: bool) -> None:
    """Parse once as events: refused at its line for anchors, aliases, tags, directives, a second document, or
    nesting and size past the render's bounds (before any node is built)."""
    depth = documents = 0
    try:
        for count, event in enumerate(yaml.parse(text, Loader=_LOADER)):
            line = f"{where}:{event.start_mark.line + 1 if event.start_mark else 1}"
            if count > settings.max_document_nodes:
                raise RenderError(f"{line}: more than {settings.max_document_nodes} YAML nodes (max_document_nodes)")
            if _unusual(event):
                raise RenderError(f"{line}: {_unusual(event)} changes how the file reads{_FIX}")
            documents += isinstance(event, yaml.DocumentStartEvent)
            if documents > 1 and not many:
                raise RenderError(f"{line}: a second YAML document (kustomize reads only the first){_FIX}")
            depth += isinstance(event, yaml.CollectionStartEvent) - isinstance(event, yaml.CollectionEndEvent)
            if depth > settings.max_depth:
                raise RenderError(f"{line}: nested deeper than {settings.max_depth} (max_depth)")
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise RenderError(f"{where}{line}: not valid YAML: {getattr(e, 'problem', None) or e}") from e


def _unusual(event: yaml.Event) -> str | None:
    if isinstance(event, yaml.AliasEvent):
        return f"an alias (*{event.anchor})"
    if isinstance(event, yaml.NodeEvent) and event.anchor is not None:
        return f"an anchor (&{event.anchor})"
    if isinstance(event, (yaml.ScalarEvent, yaml.CollectionStartEvent)) and event.tag is not None:
        return f"an explicit tag ({event.tag})"
    if isinstance(event, yaml.DocumentStartEvent) and (event.version or event.tags):
        return "a %YAML or %TAG directive"
    return None


def _require_plain_keys(top: yaml.MappingNode, where: str) -> None:
    """Every key in the file is ASCII text, not a merge key, and unique when case is ignored: Go's decoding
    matches field names in any case (and folds some non-ASCII letters, like U+017F, onto ASCII ones)."""
    pending: list[yaml.Node] = [top]
    while pending:
        node = pending.pop()
        if isinstance(node, yaml.SequenceNode):
            pending.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                _require_plain_key(key, seen, where)
                pending.append(value)


def _require_plain_key(key: yaml.Node, seen: dict[str, int], where: str) -> None:
    line = key.start_mark.line + 1
    if not isinstance(key, yaml.ScalarNode) or not key.value.isascii() or not key.value.isprintable():
        raise RenderError(f"{where}:{line}: a key that is not plain ASCII text{_FIX}")
    if key.value == "<<":
        raise RenderError(f"{where}:{line}: a merge key (<<) adds fields this check would not see{_FIX}")
    if (first := seen.get(key.value.lower())) is not None:
        raise RenderError(f"{where}:{line}: the key {key.value!r} repeats the one on line {first} (kustomize "
                          "reads field names in any case); keep one")  # fmt: skip
    seen[key.value.lower()] = line
