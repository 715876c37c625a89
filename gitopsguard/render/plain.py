"""Reading plain YAML manifests, keeping the line each document starts on for error messages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from gitopsguard.documents.bounds import Budget, LimitError
from gitopsguard.documents.chunks import chunks
from gitopsguard.documents.files import read_bounded, yaml_files
from gitopsguard.documents.yamlload import documents
from gitopsguard.errors import RenderError
from gitopsguard.model import Manifest, ObjectKey
from gitopsguard.render.memo import DocumentMemo
from gitopsguard.render.settings import DEFAULT


def read_directory(
    directory: Path, root: Path, memo: DocumentMemo | None = None, budget: Budget | None = None
) -> list[Manifest]:
    """Every object in the YAML files below ``directory``, in path order; hidden folders are skipped.
    Symlinks, deep folders and files past the render's size bounds are refused before any is read."""
    budget = budget or Budget()
    manifests: list[Manifest] = []
    for path in yaml_files(directory, root, RenderError, settings=budget.settings):
        text = read_bounded(path, root, RenderError, budget.settings)
        manifests.extend(read_text(text, path.relative_to(root).as_posix(), memo, budget))
    return manifests


def read_text(text: str, origin: str, memo: DocumentMemo | None = None, budget: Budget | None = None) -> list[Manifest]:
    """The objects in one multi-document YAML text; ``origin`` names it in every error. With a memo, only
    documents the last render did not have are parsed; ``budget`` bounds what parsing may cost."""
    budget = budget or Budget(DEFAULT)
    pieces = chunks(text) if memo is not None else None
    if memo is None or pieces is None:
        return _parsed(text, origin, budget)
    if not memo.knows(origin):  # nothing to recall: one parser for the whole text, not one per document
        whole = _parsed(text, origin, budget)
        memo.keep_whole(origin, pieces, whole)
        return whole
    manifests: list[Manifest] = []
    for chunk in pieces:
        known = memo.recall(origin, chunk)
        if known is None:
            try:
                known = tuple(_parsed(chunk[1], origin, budget, chunk[0]))
            except RenderError:
                _parsed(
                    text, origin, Budget(budget.settings)
                )  # parsed whole, the error names the line as the parser sees it
                raise
            memo.keep(origin, chunk, known)
        manifests.extend(known)
    return manifests


def _parsed(text: str, origin: str, budget: Budget, first_line: int = 0) -> list[Manifest]:
    manifests: list[Manifest] = []
    for line, document in _documents(text, origin, budget):
        if document is None:
            continue
        for body in _expand_lists(document, origin, line + first_line, budget):
            manifests.append(Manifest(ObjectKey.of(body), body, f"{origin}:{line + first_line}"))
    return manifests


def _documents(text: str, origin: str, budget: Budget) -> Iterator[tuple[int, Any]]:
    try:
        yield from documents(text, budget)
    except LimitError as error:
        mark = error.problem_mark
        raise RenderError(f"{origin}:{mark.line + 1 if mark else 1}: {error.problem}") from error
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{origin}:{mark.line + 1}" if mark else origin
        raise RenderError(f"{where}: not valid YAML: {error.problem or error.context}") from error
    except yaml.YAMLError as error:
        raise RenderError(f"{origin}: not valid YAML: {error}") from error


def _expand_lists(document: Any, origin: str, line: int, budget: Budget) -> list[dict[str, Any]]:
    body = _checked(document, origin, line)
    if body["kind"] == "List" or (body["kind"].endswith("List") and isinstance(body.get("items"), list)):
        items = body.get("items") or []
        if not isinstance(items, list):
            raise RenderError(f"{origin}:{line}: {body['kind']} has `items` that are not a list")
        budget.documents -= len(items)
        if budget.documents < 0:
            raise RenderError(f"{origin}:{line}: the items of this {body['kind']} make more than "
                              f"{budget.settings.max_documents} documents in one render (max_documents); "
                              "render smaller paths")  # fmt: skip
        return [_item(item, origin, line, body["kind"]) for item in items]
    return [body]


def _item(document: Any, origin: str, line: int, kind: str) -> dict[str, Any]:
    """One object of a List: an object, never a List again (kubectl expands one level, and the API server
    has no path for a List: one inside another stopped a whole pass with a TypeError)."""
    item = _checked(document, origin, line)
    if item["kind"].endswith("List") and "items" in item:
        raise RenderError(f"{origin}:{line}: a {item['kind']} inside a {kind}; list the objects themselves")
    return item


def _checked(document: Any, origin: str, line: int) -> dict[str, Any]:
    where = f"{origin}:{line}"
    if not isinstance(document, dict):
        raise RenderError(f"{where}: a Kubernetes object must be a mapping, found {type(document).__name__}")
    for field in ("apiVersion", "kind"):
        if not isinstance(document.get(field), str) or not document[field]:
            raise RenderError(f"{where}: the object has no `{field}`")
    if document["kind"].endswith("List") and "items" in document:
        return document
    metadata = document.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str) or not metadata["name"]:
        raise RenderError(f"{where}: {document['kind']} has no `metadata.name`")
    for field in ("kind", "name", "namespace"):  # they are in every message about the object
        text = document["kind"] if field == "kind" else metadata.get(field) or ""
        if isinstance(text, str) and not text.isprintable():
            raise RenderError(f"{where}: {field} {text!a} holds control characters; Kubernetes refuses it")
    _require_metadata_shape(metadata, f"{where}: {document['kind']}/{metadata['name']}")
    return document


def _require_metadata_shape(metadata: dict[str, Any], where: str) -> None:
    """What every later stage reads of an object without looking: a namespace that is text, and labels and
    annotations that map text to text (issue 21.9: ``labels: oops`` crashed a policy pack)."""
    if metadata.get("namespace") is not None and not isinstance(metadata["namespace"], str):
        raise RenderError(f"{where}: metadata.namespace must be a string")
    for field in ("labels", "annotations"):
        values = metadata.get(field)
        if values is None:
            continue
        if not isinstance(values, dict):
            raise RenderError(f"{where}: metadata.{field} must be a map of names to strings, found "
                              f"{type(values).__name__}")  # fmt: skip
        for key, value in values.items():
            if not isinstance(key, str):
                raise RenderError(f"{where}: metadata.{field} keys must be strings, found {key!r:.60}")
            if not isinstance(value, str):
                raise RenderError(f"{where}: metadata.{field}.{key} must be a string (quote it), found "
                                  f"{type(value).__name__}")  # fmt: skip
