"""The bounds every YAML loader of gitopsguard keeps (issue 15.2: a 553-byte file of nested aliases took
more than 1 GiB; issue 21.10: a 3 MB document took 500 MB to compose).

A ``Budget`` is what one render (or one loader call) may still parse. Each document's node graph is
measured before anything is built from it, an alias counting as every node it repeats, without expanding
any; a document that may be too big for the parser to hold is counted from its events first; numbers too
long to be Kubernetes numbers and values an explicit tag cannot hold are refused at their line; and any
other error PyYAML raises on odd input becomes a YAML error. Past a bound, ``LimitError`` names the line.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from gitopsguard.documents.chunks import chunks
from gitopsguard.documents.limits import LIMITS, ReadLimits

try:
    from yaml._yaml import CParser

    HAVE_LIBYAML = True
except ImportError:  # PyYAML built without libyaml: events come from the pure-Python parser
    CParser, HAVE_LIBYAML = object, False  # type: ignore[assignment, misc]

MAX_NUMBER_CHARS = 64  # Kubernetes numbers are 64-bit (19 digits); Python's int() refuses past 4,300 digits


class LimitError(yaml.MarkedYAMLError):
    """A YAML text past one of the render's bounds, marked at the node that passed it."""

    def __init__(self, problem: str, mark: yaml.Mark | None) -> None:
        super().__init__(problem=problem, problem_mark=mark)


class Budget:
    """What one render (or one loader call) may still parse: YAML nodes, with aliases counted as the nodes
    they repeat, and documents; and how deep any document may nest. Shared by every text of a render."""

    def __init__(self, settings: ReadLimits = LIMITS) -> None:
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
            loader.add_constructor(tag, guarded(construct))


def guarded(construct: Any) -> Any:
    """A scalar constructor that raises a ConstructorError at the value's line for a value it cannot read."""

    def construct_or_refuse(loader: Any, node: yaml.Node) -> Any:
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

    construct_or_refuse.guarded = True  # type: ignore[attr-defined]
    return construct_or_refuse


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
