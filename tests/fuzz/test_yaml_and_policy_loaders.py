"""Fuzz the loaders a commit's YAML goes through: documents (documents/yamlload.py), the line-keeping loader
of policies, and Policy/PolicyException files (policy/load.py). Each answers hostile text with its typed
error only, and never builds more than its budget of nodes, however the text uses aliases."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.documents.bounds import Budget
from gitopsguard.documents.lines import documents as lined_documents
from gitopsguard.documents.yamlload import documents, parse_bounded
from gitopsguard.errors import PolicyError
from gitopsguard.policy import parse_policies
from gitopsguard.render.settings import RenderSettings

SMALL = RenderSettings(max_nodes=2_000, max_depth=30, max_documents=50)
TOKENS = ["&a ", "&b ", "*a", "*b", "[", "]", "{", "}", ": ", ", ", "- ", "\n", "  ", "---\n", "...\n", "x", "7",
          "!!binary ", "!!set ", "!!python/object:os.system ", "!!int ", "!!float ", "<<: ", "%YAML 1.1\n", "? ",
          "|\n", "'", '"', "9" * 5000, "1e999", ".nan", "0x" + "f" * 80, "2026-01-01", "~", "\t", "#", "\ufeff",
          "\x00", "é", "\U0001f600"]  # fmt: skip
soups = st.lists(st.sampled_from(TOKENS), max_size=60).map("".join)
LAUGHS = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n" for p, n in zip("abcdefg", "bcdefgh", strict=True)
)


def nodes_in(value: Any) -> int:
    """Nodes of a built value, counted without recursion and with shared parts counted each time (as they
    would be when the value is sent as JSON)."""
    count, stack = 0, [value]
    while stack:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            count += len(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        if count > 10 * SMALL.max_nodes:
            break
    return count


@given(text=soups | st.text(max_size=200))
@example(text=LAUGHS)
@example(text="a: &a [*a]\n")
@example(text="x: " + "[" * 500 + "]" * 500)
@example(text="x: " + "9" * 5000)
@example(text="---\n---\n!!binary ")  # libyaml's composer raised UnboundLocalError
def test_documents_answer_any_text_with_a_yaml_error_and_stay_within_the_node_budget(text: str) -> None:
    budget = Budget(SMALL)
    try:
        built = [value for _, value in documents(text, budget)]
    except yaml.YAMLError:
        return
    assert sum(nodes_in(value) for value in built) <= SMALL.max_nodes


@given(text=soups | st.text(max_size=200))
@example(text=LAUGHS)
@example(text="x: " + "[" * 500 + "]" * 500)
@example(text="---\n---\n!!binary ")
def test_the_line_keeping_loader_answers_any_text_with_a_yaml_error_within_the_budget(text: str) -> None:
    try:
        built = [value for _, value in lined_documents(text, Budget(SMALL))]
    except yaml.YAMLError:
        return
    assert sum(nodes_in(value) for value in built) <= SMALL.max_nodes


@given(text=soups)
@example(text=LAUGHS)
def test_the_bounded_loader_raises_only_the_error_it_is_given_naming_the_file(text: str) -> None:
    try:
        parse_bounded(text, "access/grants/x.yaml", PolicyError, Budget(SMALL))
    except PolicyError as error:
        assert str(error).startswith("access/grants/x.yaml")


FIELDS = ["code", "severity", "enforcement", "match", "exclude", "builtin", "validations", "mutate", "live",
          "policies", "controls", "reason", "expires", "kinds", "namespaces", "names", "labels", "name", "params",
          "expression", "message", "path", "addLabels", "addAnnotations", "setDefaults", "value", "action",
          "gracePeriod"]  # fmt: skip
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12) | st.sampled_from(FIELDS)
    | st.sampled_from(["HIGH", "enforce", "required-labels", "pss-restricted", "object.kind == 'Pod'", "1h",
                       "2026-12-31T00:00:00Z", "delete"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(FIELDS), inner, max_size=4),
    max_leaves=20,
)  # fmt: skip
policy_documents = st.fixed_dictionaries({
    "apiVersion": st.just("gitopsguard.io/v1alpha1") | values,
    "kind": st.sampled_from(["Policy", "PolicyException"]) | values,
    "metadata": st.fixed_dictionaries({"name": st.sampled_from(["p", "q"]) | values}) | values,
    "spec": st.dictionaries(st.sampled_from(FIELDS), values, max_size=6) | values,
})  # fmt: skip


@given(docs=st.lists(policy_documents, min_size=1, max_size=3))
@example(
    docs=[
        {
            "apiVersion": "gitopsguard.io/v1alpha1",
            "kind": "Policy",
            "metadata": {"name": "p"},
            "spec": {"live": {"gracePeriod": 10**5000 if False else "9" * 50}, "builtin": "magtape"},
        }
    ]
)
@example(
    docs=[
        {
            "apiVersion": "gitopsguard.io/v1alpha1",
            "kind": "Policy",
            "metadata": {"name": "p"},
            "spec": {"mutate": {"setDefaults": [{"path": "", "value": 1}]}},
        }
    ]
)
@example(
    docs=[
        {
            "apiVersion": "gitopsguard.io/v1alpha1",
            "kind": "PolicyException",
            "metadata": "x",
            "spec": {"policies": "p", "reason": "r", "expires": "2026-12-31T00:00:00Z", "match": {"names": "a"}},
        }
    ]
)
@example(  # found by CI's run: a built-in named by a list raised TypeError (unhashable) in the lookup
    docs=[
        {
            "apiVersion": "gitopsguard.io/v1alpha1",
            "kind": "Policy",
            "metadata": {"name": "p"},
            "spec": {"builtin": {"name": ["pss-baseline"]}},
        }
    ]
)
@example(
    docs=[
        {
            "apiVersion": "gitopsguard.io/v1alpha1",
            "kind": "Policy",
            "metadata": {"name": "p"},
            "spec": {"builtin": {"name": "pss-baseline", "params": ["x"]}},
        }
    ]
)
def test_generated_policies_and_exceptions_give_only_policy_errors(docs: list[dict[str, Any]]) -> None:
    try:
        parse_policies({"policies/p.yaml": yaml.safe_dump_all(docs)})
    except PolicyError as error:
        assert str(error).startswith("policies/p.yaml"), str(error)


@given(text=soups)
@example(text="apiVersion: gitopsguard.io/v1alpha1\nkind: Policy\nmetadata: {name: p}\nspec:\n  live: {gracePeriod: "
              + "9" * 5000 + "}\n")  # fmt: skip
@example(text=LAUGHS.replace("a:", "apiVersion: gitopsguard.io/v1alpha1\nkind: Policy\nmetadata: {name: p}\na:", 1))
def test_policy_files_of_any_text_give_only_policy_errors_naming_the_file(text: str) -> None:
    try:
        parse_policies({"policies/p.yaml": text})
    except PolicyError as error:
        assert str(error).startswith("policies/p.yaml"), str(error)
