"""Loading YAML documents fast, with the values kubectl and kustomize read from a manifest.

Those are ``yaml.safe_load``'s values with one difference: a plain scalar that looks like a timestamp
(``2026-01-01``) stays the text it is, as Go's YAML reader keeps it, so that it is sent as written (a
``datetime`` is not JSON at all). ``!!binary`` and ``!!set`` have no JSON form and are refused with the
line they are on.

libyaml's loader still resolves every scalar and builds every value in Python; on 5,000 manifests that was
2.8 s. Here libyaml only marks which scalars were plain, and the common values (strings, mappings, lists)
are built directly; a plain scalar is resolved with the safe loader's own rules and constructors, only
when its first character could start a non-string. A document with anything unusual (explicit tags,
merge keys, keys that are not scalars) is loaded by the safe loader itself, with the same difference.

Every loader here is bounded (issue 15.2: a 553-byte file of nested aliases took more than 1 GiB): each
document's node graph is measured before anything is built from it, an alias counting as every node it
repeats, against the render's ``Budget`` (nodes, documents, nesting depth); a number too long to be a
Kubernetes number is refused rather than converted. Past a bound, ``LimitError`` names the line.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.resolver import BaseResolver

from gitopsguard.errors import GitOpsGuardError
from gitopsguard.render.files import read_bounded
from gitopsguard.render.memo import chunks
from gitopsguard.render.settings import DEFAULT, RenderSettings

try:
    from yaml._yaml import CParser

    HAVE_LIBYAML = True
except ImportError:  # PyYAML built without libyaml: every document takes the safe loader's path
    CParser, HAVE_LIBYAML = object, False  # type: ignore[assignment, misc]

_STR, _MAP, _SEQ = "tag:yaml.org,2002:str", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"
_PLAIN = "gitopsguard:plain"  # a plain scalar whose type the safe loader's rules decide
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_IMPLICIT = yaml.SafeLoader.yaml_implicit_resolvers
_CONSTRUCTORS = SafeConstructor.yaml_constructors
_INT = "tag:yaml.org,2002:int"
MAX_NUMBER_CHARS = 64  # Kubernetes numbers are 64-bit (19 digits); Python's int() refuses past 4,300 digits


class LimitError(yaml.MarkedYAMLError):
    """A YAML text past one of the render's bounds, marked at the node that passed it."""

    def __init__(self, problem: str, mark: yaml.Mark | None) -> None:
        super().__init__(problem=problem, problem_mark=mark)


class Budget:
    """What one render (or one loader call) may still parse: YAML nodes, with aliases counted as the nodes
    they repeat, and documents; and how deep any document may nest. Shared by every text of a render."""

    def __init__(self, settings: RenderSettings = DEFAULT) -> None:
        self.settings = settings
        self.nodes = settings.max_nodes
        self.documents = settings.max_documents

    def spend(self, node: yaml.Node) -> None:
        """Count one document and its nodes (before anything is built from it); LimitError past a bound."""
        self.count_document(node)
        self.measure(node)

    def count_document(self, node: yaml.Node) -> None:
        self.documents -= 1
        if self.documents < 0:
            raise LimitError(f"more than {self.settings.max_documents} documents in one render "
                             "(max_documents); render smaller paths", node.start_mark)  # fmt: skip

    def measure(self, node: yaml.Node) -> None:
        self.nodes -= _expanded_size(node, self.nodes, self)

    def too_many(self, node: yaml.Node) -> LimitError:
        return LimitError(f"the YAML here expands to more than {self.settings.max_nodes} nodes in one render, "
                          "counting each alias as the nodes it repeats (max_nodes); remove the aliases or "
                          "split the file", node.start_mark)  # fmt: skip

    def too_deep(self, node: yaml.Node) -> LimitError:
        return LimitError(f"mappings and lists nested deeper than {self.settings.max_depth} levels "
                          "(max_depth)", node.start_mark)  # fmt: skip


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return node.value if isinstance(node, yaml.SequenceNode) else []


def _expanded_size(root: yaml.Node, cap: int, budget: Budget) -> int:
    """Nodes in the document once every alias is expanded, found without expanding any (each shared node is
    measured once); refused past ``cap``, past the nesting depth, or when an alias is inside its own anchor."""
    sizes: dict[int, int] = {}
    path = {id(root)}
    stack = [(root, iter(_children(root)))]
    while stack:
        node, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            path.discard(id(node))
            sizes[id(node)] = size = 1 + sum(sizes.get(id(c), 1) for c in _children(node))
            if size > cap:
                raise budget.too_many(node)
        elif id(child) in path:
            raise LimitError("an alias here refers to a node it is inside of; remove the alias", child.start_mark)
        elif id(child) not in sizes and not isinstance(child, yaml.ScalarNode):
            if len(stack) >= budget.settings.max_depth:
                raise budget.too_deep(child)
            path.add(id(child))
            stack.append((child, iter(_children(child))))
    return sizes[id(root)]


def construct_int(constructor: SafeConstructor, node: yaml.ScalarNode) -> Any:
    """The safe loader's integer, refused when it is too long to be one Kubernetes could hold."""
    if len(node.value) > MAX_NUMBER_CHARS:
        raise LimitError(f"a number of {len(node.value)} digits; Kubernetes numbers have at most 19 "
                         "(quote it if it is text)", node.start_mark)  # fmt: skip
    return SafeConstructor.construct_yaml_int(constructor, node)


class _ManifestLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe loader, with timestamps kept as text and the tags that have no JSON form refused."""

    def construct_no_json(self, node: yaml.Node) -> None:
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.tag} has no JSON form; a Kubernetes manifest cannot hold it", node.start_mark
        )


_ManifestLoader.add_constructor(_TIMESTAMP, SafeConstructor.construct_yaml_str)
_ManifestLoader.add_constructor("tag:yaml.org,2002:binary", _ManifestLoader.construct_no_json)
_ManifestLoader.add_constructor("tag:yaml.org,2002:set", _ManifestLoader.construct_no_json)
_ManifestLoader.add_constructor(_INT, construct_int)

_SCALAR_TAGS = ("null", "bool", "int", "float", "binary", "timestamp", "str")
# What PyYAML's scalar constructors raise on a value an explicit tag forces on them (`!!int --`: ValueError,
# `!!int ''`: IndexError, `!!bool x`: KeyError, `!!timestamp x`: AttributeError).
_VALUE_ERRORS = (ValueError, IndexError, KeyError, AttributeError, TypeError, OverflowError)


def guard_scalars(loader: Any) -> None:
    """Make the scalar constructors of a loader class raise a YAML error at the value's line for a value
    they cannot read, instead of whatever Python raised."""
    for tag in (f"tag:yaml.org,2002:{name}" for name in _SCALAR_TAGS):
        construct = loader.yaml_constructors.get(tag)
        if construct is not None and not getattr(construct, "guarded", False):
            loader.add_constructor(tag, _guarded(construct))


def _guarded(construct: Any) -> Any:
    def guarded(loader: Any, node: yaml.Node) -> Any:
        try:
            return construct(loader, node)
        except _VALUE_ERRORS as error:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"{node.tag} cannot hold {str(node.value)[:40]!r} ({error.__class__.__name__}); "
                "write a value of that type, or quote it",
                node.start_mark,
            ) from error

    guarded.guarded = True  # type: ignore[attr-defined]
    return guarded


guard_scalars(_ManifestLoader)


class _Unusual(Exception):  # noqa: N818  (not an error: the signal to take the safe loader's path)
    pass


# Characters at least one of which stands beside every node but the document's first: a key (`:`, `?`), an
# entry (`-`, `,`), a collection (`[`, `{`). Each one stands for at most three nodes (key, value, and the
# mapping they open), so a text with few of them has few nodes, and is counted no further.
_BESIDE_NODES = (":", "?", "-", ",", "[", "{")


def require_composable(text: str, budget: Budget) -> None:
    """Refuse a document with more nodes than ``max_document_nodes`` before the parser holds it (issue 21.10:
    the parser's own nodes cost ~400 bytes each, so a 3 MB document of `{a: 1}, ` took 500 MB to compose).
    Checked per ``---`` piece, from a count of characters; only a piece that may be too big is parsed, one
    event at a time, to count its nodes exactly."""
    cap = budget.settings.max_document_nodes
    for first_line, piece in chunks(text) or [(0, text)]:
        if 1 + 3 * sum(piece.count(c) for c in _BESIDE_NODES) > cap:
            _count_events(piece, first_line, cap)


def _count_events(text: str, first_line: int, cap: int) -> None:
    parser = CParser(text) if HAVE_LIBYAML else yaml.SafeLoader(text)
    nodes = 0
    try:
        while (event := parser.get_event()) is not None:
            if isinstance(event, yaml.DocumentStartEvent):
                nodes = 0
            elif isinstance(event, yaml.NodeEvent):
                nodes += 1
                if nodes > cap:
                    line, column = (event.start_mark.line, event.start_mark.column) if event.start_mark else (0, 0)
                    raise LimitError(
                        f"the document this line is in has more than {cap} YAML nodes (max_document_nodes); split it",
                        yaml.Mark("<unicode string>", 0, line + first_line, column, None, 0),
                    )
            if isinstance(event, yaml.StreamEndEvent):
                return
    except LimitError:
        raise
    except yaml.YAMLError:  # not valid: the parse proper says where
        return
    finally:
        parser.dispose()


def documents(
    text: str, budget: Budget | None = None, *, settings: RenderSettings = DEFAULT
) -> Iterator[tuple[int, Any]]:
    """(line the document starts on, its value) for each document; raises yaml.YAMLError like safe_load, and
    LimitError past the bounds of ``budget`` (a new one of ``settings`` when none is given)."""
    return yaml_errors_only(_documents(text, budget or Budget(settings)))


# What PyYAML's own parser and constructors have been seen to raise on odd input, besides YAML errors
# (libyaml's composer: UnboundLocalError on `---\n---\n!!binary `).
_PARSER_BUGS = (NameError, AttributeError, TypeError, ValueError, IndexError, KeyError, RecursionError)


def yaml_errors_only(found: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
    """The documents, with any other error of the parser raised as a yaml.YAMLError (fail closed: the file
    is refused, with the reason)."""
    try:
        yield from found
    except _PARSER_BUGS as error:
        raise yaml.YAMLError(f"the YAML parser failed on this file ({type(error).__name__}: {error})") from error


def _documents(text: str, budget: Budget) -> Iterator[tuple[int, Any]]:
    require_composable(text, budget)
    if not HAVE_LIBYAML:
        yield from _safe_documents(text, budget)
        return
    # Without an anchor (no `&` anywhere) no node is shared, so the nodes are counted as they are built, at
    # no extra cost; a text with one is measured document by document before anything is built from it.
    anchored = "&" in text
    counter = Budget(replace(budget.settings, max_nodes=sys.maxsize)) if anchored else budget
    loader = _FastLoader(text)
    count = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            budget.spend(node) if anchored else budget.count_document(node)
            try:
                value = _build(loader, node, counter, 1)
            except (_Unusual, TypeError, yaml.constructor.ConstructorError):
                if not anchored:
                    budget.measure(node)
                yield from _safe_documents(text, budget, skip=count + 1, again=node)
                return
            count += 1
            yield node.start_mark.line + 1, value
    finally:
        loader.dispose()


def _safe_documents(
    text: str, budget: Budget, skip: int = 0, again: yaml.Node | None = None
) -> Iterator[tuple[int, Any]]:
    """The safe loader's documents from the ``skip``-th on (1-based); ``again`` is the one already counted."""
    loader = _ManifestLoader(text)
    try:
        for _ in range(max(skip - 1, 0)):
            loader.get_node()
        if again is not None and loader.check_node():
            node = loader.get_node()
            yield node.start_mark.line + 1, loader.construct_document(node)
        yield from each_document(loader, budget)
    finally:
        loader.dispose()


def each_document(loader: Any, budget: Budget | None = None) -> Iterator[tuple[int, Any]]:
    """(line the document starts on, its value) from any PyYAML loader, each document measured against
    ``budget`` before it is built; the loader is disposed of at the end."""
    budget = budget or Budget()
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                budget.spend(node)
                yield node.start_mark.line + 1, loader.construct_document(node)
    finally:
        loader.dispose()


class _FastLoader(CParser, SafeConstructor, BaseResolver):
    def __init__(self, stream: str) -> None:
        CParser.__init__(self, stream)
        SafeConstructor.__init__(self)
        BaseResolver.__init__(self)

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode:
            return _PLAIN if implicit[0] else _STR
        return _MAP if kind is yaml.MappingNode else _SEQ

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass


def _build(loader: _FastLoader, node: yaml.Node, budget: Budget, depth: int) -> Any:
    budget.nodes -= 1
    if budget.nodes < 0:
        raise budget.too_many(node)
    tag = node.tag
    if tag == _PLAIN:
        return _plain(loader, node)
    if tag == _STR:
        return node.value
    if depth > budget.settings.max_depth:
        raise budget.too_deep(node)
    if tag == _MAP:
        result = {}
        budget.nodes -= len(node.value)  # the keys
        for key, value in node.value:
            if key.tag not in (_PLAIN, _STR):
                raise _Unusual
            built = _plain(loader, key) if key.tag == _PLAIN else key.value
            if built is _MERGE:
                raise _Unusual
            result[built] = _build(loader, value, budget, depth + 1)
        return result
    if tag == _SEQ:
        return [_build(loader, item, budget, depth + 1) for item in node.value]
    raise _Unusual  # an explicit tag


_MERGE = object()


_FAST_CONSTRUCTORS = {tag: _guarded(construct) for tag, construct in _CONSTRUCTORS.items()} | {
    _INT: _guarded(construct_int)
}


def _plain(loader: _FastLoader, node: yaml.Node) -> Any:
    value = node.value
    for tag, pattern in _IMPLICIT.get(value[:1] if value else "", ()):
        if pattern.match(value):
            if tag == "tag:yaml.org,2002:merge":
                return _MERGE
            if tag == _TIMESTAMP:
                return value
            if tag not in _CONSTRUCTORS:
                raise _Unusual
            scalar = yaml.ScalarNode(tag, value, node.start_mark, node.end_mark)
            return _FAST_CONSTRUCTORS[tag](loader, scalar)
    return value


def parse_bounded(
    text: str, shown: str, error: type[GitOpsGuardError], budget: Budget | None = None
) -> list[tuple[int, Any]]:
    """The documents of a YAML text from Git or the operator as (line, value), within ``budget`` (the render's
    default bounds when none is given): aliases counted as what they repeat, nodes, depth, documents, numbers.
    Raises ``error`` with a message that starts ``shown:line:``, for bad YAML and for every bound passed."""
    try:
        return list(documents(text, budget))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = e.problem if isinstance(e, LimitError) else f"not valid YAML: {e.problem or e.context}"
        raise error(f"{shown}:{mark.line + 1 if mark else 1}: {problem}") from e
    except yaml.YAMLError as e:
        raise error(f"{shown}: not valid YAML: {e}") from e


def load_bounded(
    path: Path, error: type[GitOpsGuardError], *, shown: str | None = None, settings: RenderSettings = DEFAULT
) -> list[tuple[int, Any]]:
    """The one bounded way to read a YAML file that a commit or an operator wrote (grant files, escalation
    policies, the trust configuration): (line, value) for each document, values as kubectl reads them.

    The file is refused before it is read when it is a symlink or bigger than ``settings.max_file_bytes``,
    and its YAML past any of the bounds of ``parse_bounded``. Raises ``error`` (PolicyError for access files,
    GitOpsGuardError for the trust configuration, ...) with a message that starts with ``shown`` (default:
    the path) and the line, and says what to do; never a library error."""
    name = shown or str(path)
    text = read_bounded(path, path.parent, error, settings, shown=name)
    return parse_bounded(text, name, error, Budget(settings))
