"""The Unit CRD's schema (manifests/crds/unit.yaml) and units/spec.py hold the same rules: what Git may say is
what the API server may store, so a Unit refused in Git cannot be made by hand, and the reverse."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.units.spec import DURATION_PATTERN, MAX_DEPENDS_ON, MAX_PATH_CHARS, PATH_PATTERN, path_problem

CRD = yaml.safe_load((Path(__file__).parents[3] / "manifests" / "crds" / "unit.yaml").read_text())
SCHEMA = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
SPEC = SCHEMA["properties"]["spec"]["properties"]


def admitted(field: dict[str, Any], value: str) -> bool:
    """Whether the API server's string rules (pattern, lengths) admit ``value``. Go's RE2 reads these patterns
    as Python's re does (no lookaround, no backreferences) but for one thing: its ``$`` is the end of the text,
    where Python's also matches before a final newline (the example ``a/\n`` found it)."""
    pattern = field["pattern"].removesuffix("$") + r"\Z"
    return field.get("minLength", 0) <= len(value) <= field.get("maxLength", 10**9) and bool(re.search(pattern, value))


def test_the_crd_holds_the_same_patterns_and_bounds_as_the_parser() -> None:
    assert SPEC["path"]["pattern"] == SPEC["policiesPath"]["pattern"] == PATH_PATTERN
    assert SPEC["path"]["maxLength"] == MAX_PATH_CHARS and SPEC["dependsOn"]["maxItems"] == MAX_DEPENDS_ON
    assert SPEC["interval"]["pattern"] == SPEC["timeout"]["pattern"] == DURATION_PATTERN
    assert CRD["spec"]["names"]["shortNames"] == ["gu"] and CRD["spec"]["versions"][0]["subresources"] == {"status": {}}


path_text = st.text(alphabet=st.sampled_from(list("ab./-_*?[] \\\u00e9~@+\n")), max_size=24)


@given(path_text)
@example("..")
@example("a/../b")
@example("./")
@example("a//b")
@example("...")
@example("a/\n")
def test_a_path_is_admitted_by_the_api_server_exactly_when_the_parser_reads_it(path: str) -> None:
    assert admitted(SPEC["path"], path) == (path_problem(path) == "")
