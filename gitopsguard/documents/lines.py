"""YAML documents whose mappings remember the line of each key, so errors in policy, exception, grant and
escalation-policy files can name it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from gitopsguard.documents.bounds import (
    Budget,
    LimitError,
    construct_int,
    guard_scalars,
    require_composable,
    yaml_errors_only,
)
from gitopsguard.documents.yamlload import each_document
from gitopsguard.errors import PolicyError

# libyaml's parser when there is one: it refuses nesting past 1,000 levels itself, where the pure-Python
# parser would recurse until Python's own limit (a RecursionError, not a YAML error).
_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Lined(dict[str, Any]):
    """A mapping that knows the line it starts on and the line of each of its keys (1-based)."""

    line: int = 0
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class _Loader(_Base):  # type: ignore[misc]
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        plain = super().construct_mapping(node, deep=True)
        lined = Lined({str(k): v for k, v in plain.items()})
        lined.line = node.start_mark.line + 1
        lined.key_lines = {str(k.value): k.start_mark.line + 1 for k, _ in node.value}
        return lined


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _Loader.construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:int", construct_int)
guard_scalars(_Loader)


def documents(text: str, budget: Budget | None = None) -> Iterator[tuple[int, Any]]:
    """(line the document starts on, its value) for each document, within ``budget`` (the default bounds
    when none is given); raises yaml.YAMLError."""
    budget = budget or Budget()
    require_composable(text, budget)
    return yaml_errors_only(each_document(_Loader(text), budget))


def read_documents(name: str, text: str, budget: Budget | None = None) -> list[tuple[int, Lined]]:
    """The mapping documents of one file, with their lines, within ``budget`` (the default bounds when none
    is given: aliases, nodes, depth); PolicyError naming file and line otherwise."""
    try:
        found = [(line, doc) for line, doc in documents(text, budget) if doc is not None]
    except LimitError as error:
        mark = error.problem_mark
        raise PolicyError(f"{name}:{mark.line + 1 if mark else 1}: {error.problem}") from error
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        raise PolicyError(f"{name}:{mark.line + 1 if mark else 1}: not valid YAML: {error.problem}") from error
    except yaml.YAMLError as error:
        raise PolicyError(f"{name}: not valid YAML: {error}") from error
    for line, document in found:
        if not isinstance(document, Lined):
            raise PolicyError(f"{name}:{line}: a document here must be a mapping")
    return found
