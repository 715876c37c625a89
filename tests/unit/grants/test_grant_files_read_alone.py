"""A grant file that cannot be read is denied alone: whatever it holds (wrong types, numbers too large for a
duration, odd Unicode, not YAML at all), reading it never raises, it is named with its file, and every other
grant file is still read."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.grants.keeper import read_grants
from tests.signedrepo import grant

GOOD, BAD = "access/grants/alice.yaml", "access/grants/broken.yaml"
TEMPLATE = yaml.safe_load(grant("broken", "shop"))
_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30)
    | st.sampled_from(["99999999999d", "1d", "-1h", "0s", "9" * 40 + "s", "User", "ClusterRole"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip
_places = st.sampled_from([("spec", "subject"), ("spec", "duration"), ("spec", "role"), ("spec",), ("metadata",),
                           ("spec", "subject", "name"), ("spec", "namespace"), ("metadata", "name"),
                           ("kind",)])  # fmt: skip


def read(bad_text: str) -> tuple[list[str], list[tuple[str, str]]]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for path, text in ((GOOD, grant("alice-debug", "shop")), (BAD, bad_text)):
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(text, encoding="utf-8", errors="surrogatepass")
        grants, broken = read_grants(root, lambda p: f"{abs(hash(p)):040x}")
        return [g.path for g in grants], broken


def placed(place: tuple[str, ...], value: Any) -> str:
    doc: Any = yaml.safe_load(yaml.safe_dump(TEMPLATE))
    node = doc
    for key in place[:-1]:
        node = node[key]
    node[place[-1]] = value
    return yaml.safe_dump(doc, allow_unicode=True)


def test_a_subject_given_as_a_string_is_denied_alone_with_its_file() -> None:
    """One of the two files that once killed the keeper thread (AttributeError in the loader)."""
    paths, broken = read(placed(("spec", "subject"), "alice"))
    assert paths == [GOOD]
    assert [where.split(":")[0] for where, _ in broken] == [BAD] and broken[0][1].startswith(BAD)


def test_a_duration_too_large_for_a_timedelta_is_denied_alone_with_its_file() -> None:
    """The other one (OverflowError)."""
    paths, broken = read(placed(("spec", "duration"), "99999999999d"))
    assert paths == [GOOD] and [where.split(":")[0] for where, _ in broken] == [BAD]


@given(_places, _values)
@example(("spec", "subject"), "alice")
@example(("spec", "duration"), "99999999999d")
@example(("spec", "role"), ["ClusterRole"])
@example(("spec",), 7)
def test_any_value_anywhere_in_a_grant_file_leaves_every_other_file_alone(place: tuple[str, ...], value: Any) -> None:
    paths, broken = read(placed(place, value))
    assert GOOD in paths
    assert all(where.split(":")[0] == BAD and why.startswith(BAD) for where, why in broken)
    assert BAD in paths or broken  # read, or denied with its file: never silently dropped


@given(st.text(max_size=200))
@example("\x00\x01")
@example("a: [")
@example("!!python/object/apply:os.system ['true']")
@example("---\n---\nkind: Grant\n")
def test_any_text_at_all_in_a_grant_file_never_stops_the_others(text: str) -> None:
    paths, broken = read(text)
    assert GOOD in paths
    assert all(where.split(":")[0] == BAD for where, _ in broken)
