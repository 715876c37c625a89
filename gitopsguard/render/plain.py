"""Reading plain YAML manifests, keeping the line each document starts on for error messages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from gitopsguard.errors import RenderError
from gitopsguard.model import Manifest, ObjectKey
from gitopsguard.render.memo import DocumentMemo, chunks
from gitopsguard.render.yamlload import documents

MANIFEST_SUFFIXES = (".yaml", ".yml")


def read_directory(directory: Path, root: Path, memo: DocumentMemo | None = None) -> list[Manifest]:
    """Every object in the YAML files below ``directory``, in path order; hidden folders are skipped."""
    manifests: list[Manifest] = []
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and path.suffix in MANIFEST_SUFFIXES and not _hidden(path.relative_to(directory)):
            manifests.extend(read_text(path.read_text(encoding="utf-8", errors="replace"), relative, memo))
    return manifests


def read_text(text: str, origin: str, memo: DocumentMemo | None = None) -> list[Manifest]:
    """The objects in one multi-document YAML text; ``origin`` names it in every error. With a memo, only
    documents the last render did not have are parsed."""
    pieces = chunks(text) if memo is not None else None
    if memo is None or pieces is None:
        return _parsed(text, origin)
    if not memo.knows(origin):  # nothing to recall: one parser for the whole text, not one per document
        whole = _parsed(text, origin)
        memo.keep_whole(origin, pieces, whole)
        return whole
    manifests: list[Manifest] = []
    for chunk in pieces:
        known = memo.recall(origin, chunk)
        if known is None:
            try:
                known = tuple(_parsed(chunk[1], origin, chunk[0]))
            except RenderError:
                return _parsed(text, origin)  # parsed whole, the error names the line as the parser sees it
            memo.keep(origin, chunk, known)
        manifests.extend(known)
    return manifests


def _parsed(text: str, origin: str, first_line: int = 0) -> list[Manifest]:
    manifests: list[Manifest] = []
    for line, document in _documents(text, origin):
        if document is None:
            continue
        for body in _expand_lists(document, origin, line + first_line):
            manifests.append(Manifest(ObjectKey.of(body), body, f"{origin}:{line + first_line}"))
    return manifests


def _documents(text: str, origin: str) -> Iterator[tuple[int, Any]]:
    try:
        yield from documents(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{origin}:{mark.line + 1}" if mark else origin
        raise RenderError(f"{where}: not valid YAML: {error.problem or error.context}") from error
    except yaml.YAMLError as error:
        raise RenderError(f"{origin}: not valid YAML: {error}") from error


def _expand_lists(document: Any, origin: str, line: int) -> list[dict[str, Any]]:
    body = _checked(document, origin, line)
    if body["kind"] == "List" or (body["kind"].endswith("List") and isinstance(body.get("items"), list)):
        return [_checked(item, origin, line) for item in body.get("items") or []]
    return [body]


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
    return document


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)
