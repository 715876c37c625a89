"""Parsed documents kept between renders: a new commit parses only what changed, with the same results."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitopsguard.documents.bounds import Budget
from gitopsguard.documents.yamlload import documents
from gitopsguard.errors import RenderError
from gitopsguard.model import Manifest
from gitopsguard.render import render
from gitopsguard.render.memo import DocumentMemo
from gitopsguard.render.plain import read_text


def configmaps(count: int, changed: int | None = None) -> str:
    return "".join(
        f"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{n}\ndata:\n"
        f"  key: {'changed' if n == changed else 'value'}\n"
        for n in range(count)
    )


def rendered(text: str, memo: DocumentMemo) -> list[Manifest]:
    manifests = read_text(text, "apps/all.yaml", memo)
    memo.rotate()
    return manifests


def same(manifests: list[Manifest]) -> list[tuple[object, ...]]:
    return [(m.key, m.body, m.origin) for m in manifests]


def test_a_new_commit_parses_only_the_documents_it_changed() -> None:
    memo = DocumentMemo()
    before = rendered(configmaps(50), memo)
    after = rendered(configmaps(50, changed=7), memo)
    assert same(after) == same(read_text(configmaps(50, changed=7), "apps/all.yaml"))
    reused = [n for n, (old, new) in enumerate(zip(before, after, strict=True)) if old is new]
    assert reused == [n for n in range(50) if n != 7]  # the same objects: their prepared forms are kept too
    assert after[7].body["data"] == {"key": "changed"}


def test_documents_whose_lines_moved_keep_their_bodies_under_their_new_lines() -> None:
    memo = DocumentMemo()
    before = rendered(configmaps(5), memo)
    after = rendered("# moved down by two lines\n\n" + configmaps(5), memo)
    assert same(after) == same(read_text("# moved down by two lines\n\n" + configmaps(5), "apps/all.yaml"))
    assert [m.origin for m in after] == [f"apps/all.yaml:{int(m.origin.split(':')[1]) + 2}" for m in before]
    assert all(old.body is new.body for old, new in zip(before, after, strict=True))


CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {}\n"
TRICKY = {
    "no leading marker": CM.format("a") + "---\n" + CM.format("b"),
    "content on the marker line": "--- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n--- !!map\n"
    + CM.format("b"),
    "block scalar with an indented marker": CM.format("a")
    + "data:\n  script: |\n    ---\n    echo hi\n---\n"
    + CM.format("b"),
    "comments and empty documents": "# head\n---\n---\n# only a comment\n---\n" + CM.format("a") + "---\n",
    "a List": "---\napiVersion: v1\nkind: List\nitems:\n- " + CM.format("a").replace("\n", "\n  ").rstrip() + "\n",
    "CRLF line ends": (CM.format("a") + "---\n" + CM.format("b")).replace("\n", "\r\n"),
    "explicit document end (parsed whole)": CM.format("a") + "...\n---\n" + CM.format("b"),
    "a directive (parsed whole)": "%YAML 1.1\n---\n" + CM.format("a") + "---\n" + CM.format("b"),
    "a date, kept as text": CM.format("a") + "  annotations: {at: 2026-01-01}\n---\n" + CM.format("b"),
}


@pytest.mark.parametrize("text", TRICKY.values(), ids=TRICKY.keys())
def test_documents_parsed_one_by_one_equal_the_text_parsed_whole(text: str) -> None:
    memo = DocumentMemo()
    rendered(CM.format("before"), memo)  # the file is known, so each new document is parsed on its own
    first = rendered(text, memo)
    again = rendered(text, memo)
    assert same(first) == same(again) == same(read_text(text, "apps/all.yaml"))


@pytest.mark.parametrize("text", TRICKY.values(), ids=TRICKY.keys())
def test_a_file_seen_first_is_parsed_whole_and_remembered_document_by_document(text: str) -> None:
    memo = DocumentMemo()
    first = rendered(text, memo)
    again = rendered("# moved down a line\n" + text, memo)
    assert same(first) == same(read_text(text, "apps/all.yaml"))
    assert same(again) == same(read_text("# moved down a line\n" + text, "apps/all.yaml"))


def test_a_file_seen_first_is_parsed_in_one_go(monkeypatch: pytest.MonkeyPatch) -> None:
    from gitopsguard.render import plain

    calls: list[str] = []

    def counted(text: str, *budget: Budget | None) -> Iterator[tuple[int, Any]]:
        calls.append(text)
        return documents(text, *budget)

    monkeypatch.setattr(plain, "documents", counted)
    memo = DocumentMemo()
    rendered(configmaps(20), memo)
    assert calls == [configmaps(20)]
    calls.clear()
    after = rendered(configmaps(20, changed=3), memo)
    assert len(calls) == 1 and "changed" in calls[0] and after[3].body["data"] == {"key": "changed"}


def test_an_error_in_a_changed_document_names_the_line_as_the_whole_parse_does() -> None:
    memo = DocumentMemo()
    rendered(configmaps(10), memo)
    broken = configmaps(10).replace("  name: cm-6\n", "  name: [cm-6\n")
    with pytest.raises(RenderError) as whole:
        read_text(broken, "apps/all.yaml")
    with pytest.raises(RenderError) as remembered:
        rendered(broken, memo)
    assert str(remembered.value) == str(whole.value)
    assert str(whole.value).startswith("apps/all.yaml:")


def test_the_same_document_twice_in_a_file_is_still_refused_as_a_duplicate(tmp_path: Path) -> None:
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "all.yaml").write_text(configmaps(3))
    memo = DocumentMemo()
    render(tmp_path, "apps", memo)
    memo.rotate()
    (tmp_path / "apps" / "all.yaml").write_text(configmaps(3) + configmaps(1))
    with pytest.raises(RenderError, match=r"ConfigMap/cm-0 is already defined at apps/all\.yaml:2"):
        render(tmp_path, "apps", memo)
