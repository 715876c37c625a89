"""A Unit's own policies (``spec.policiesPath``) can only add restrictions to the platform's: every file that
would loosen them is refused naming its file and line, and for any combination the platform's denials stand.
Attacker: a tenant who writes its own policy folder (issue 19)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.errors import PolicyError
from gitopsguard.model import Manifest
from gitopsguard.policy import DenyLevel, PolicySet, evaluate, parse_policies
from gitopsguard.policy.compose import governance, own_part, restricting
from gitopsguard.policy.load import MAX_UNIT_EXPRESSION_CHARS, MAX_UNIT_POLICIES, MAX_UNIT_VALIDATIONS
from gitopsguard.render.plain import read_text

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
API = "apiVersion: gitopsguard.io/v1alpha1\n"

# The platform's: every Deployment needs a team label (enforced) unless it is labelled legacy; images must not
# be :latest (enforced), and one exception lets shop/old through that one.
ROOT = parse_policies({
    "policies/labels.yaml": API + "kind: Policy\nmetadata: {name: team-label}\nspec:\n  enforcement: enforce\n"
    "  severity: HIGH\n  match: {kinds: [Deployment]}\n  exclude: {labels: {legacy: 'yes'}}\n"
    "  builtin: {name: required-labels, params: {labels: [team]}}\n",
    "policies/images.yaml": API + "kind: Policy\nmetadata: {name: no-latest}\nspec:\n  enforcement: enforce\n"
    "  severity: HIGH\n  code: GG1\n  match: {kinds: [Deployment]}\n  validations:\n"
    "  - expression: \"object.spec.template.spec.containers.all(c, !c.image.endsWith(':latest'))\"\n",
    "policies/exceptions.yaml": API + "kind: PolicyException\nmetadata: {name: old}\nspec:\n  policies: [no-latest]\n"
    "  match: {names: [old]}\n  reason: migration\n  expires: 2027-01-01T00:00:00Z\n",
})  # fmt: skip


def _deployment(name: str, labels: str = "{team: shop}", image: str = "web:1.0") -> Manifest:
    return read_text(f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: shop, labels: {labels}}}
spec:
  template:
    spec:
      containers: [{{name: c, image: "{image}"}}]
""", "apps/shop/web.yaml")[0]  # fmt: skip


def _own(text: str, name: str = "apps/shop/policies/own.yaml") -> PolicySet:
    return parse_policies({name: API + text}, units=True)


def _denied(manifests: list[Manifest], policies: PolicySet) -> set[str]:
    evaluation = evaluate(manifests, policies, now=NOW, deny_level=DenyLevel.LOW)
    return {r.key.name for r in evaluation.blocked}


OWN_CHECK = (
    "kind: Policy\nmetadata: {name: replicas}\nspec:\n  enforcement: enforce\n  severity: HIGH\n  code: SHOP1\n"
    "  validations:\n  - expression: \"has(object.metadata.labels) && 'tier' in object.metadata.labels\"\n"
)


def test_a_units_own_check_denies_what_the_platform_alone_lets_through() -> None:
    web = _deployment("web")
    assert _denied([web], ROOT) == set()
    combined = restricting(ROOT, _own(OWN_CHECK), unit="shop.shop")
    assert _denied([web], combined) == {"web"}
    finding = evaluate([web], combined, now=NOW, deny_level=DenyLevel.LOW).results[0].findings[0]
    assert finding.policy == "shop.shop/replicas"  # named with its Unit: never taken for the platform's


@pytest.mark.parametrize(("text", "line", "says"), [
    (OWN_CHECK + "---\n" + API + "kind: PolicyException\nmetadata: {name: mine}\nspec:\n  policies: [replicas]\n"
     "  match: {names: [web]}\n  reason: r\n  expires: 2027-01-01T00:00:00Z\n", 11, "PolicyException mine"),
    ("kind: PolicyException\nmetadata: {name: theirs}\nspec:\n  policies: [no-latest]\n  match: {names: [web]}\n"
     "  reason: r\n  expires: 2027-01-01T00:00:00Z\n", 1, "PolicyException theirs"),
    ("kind: Policy\nmetadata: {name: tag-legacy}\nspec:\n  mutate: {addLabels: {legacy: 'yes'}}\n", 1,
     "mutates objects"),
    ("kind: Policy\nmetadata: {name: no-latest}\nspec:\n  enforcement: audit\n  builtin: {name: magtape}\n", 1,
     "policy no-latest is the platform's already (policies/images.yaml:1)"),
    ("kind: Policy\nmetadata: {name: team-label}\nspec:\n  enforcement: enforce\n  match: {names: [nothing]}\n"
     "  builtin: {name: magtape}\n", 1, "policy team-label is the platform's already"),
])  # fmt: skip
def test_a_units_file_that_would_loosen_the_platforms_policies_is_refused_naming_file_and_line(
    text: str, line: int, says: str
) -> None:
    with pytest.raises(PolicyError) as error:
        restricting(ROOT, _own(text), unit="shop.shop")
    message = str(error.value)
    assert message.startswith(f"apps/shop/policies/own.yaml:{line}: "), message
    assert says in message and "can only add restrictions" in message
    assert "Unit shop.shop's revision is refused whole" in message


def test_a_mutation_would_have_let_through_what_the_platform_refuses() -> None:
    """Why mutations are refused: the team's label lifts the platform's team-label policy (its exclude)."""
    mutation = "kind: Policy\nmetadata: {name: tag-legacy}\nspec:\n  mutate: {addLabels: {legacy: 'yes'}}\n"
    unlabelled = _deployment("web", labels="{}")
    loosened = PolicySet(ROOT.policies + _own(mutation).policies, ROOT.exceptions)
    assert _denied([unlabelled], ROOT) == {"web"}
    assert _denied([unlabelled], loosened) == set()  # what a naive union would do
    with pytest.raises(PolicyError):
        restricting(ROOT, _own(mutation), unit="shop.shop")


def test_every_loosening_is_counted_and_the_first_by_file_and_line_is_named() -> None:
    files = {
        "apps/shop/policies/b.yaml": API + "kind: Policy\nmetadata: {name: m}\nspec:\n  mutate: {addLabels: {a: b}}\n",
        "apps/shop/policies/a.yaml": API + "kind: Policy\nmetadata: {name: no-latest}\nspec:\n"
        "  builtin: {name: magtape}\n",
    }  # fmt: skip
    with pytest.raises(PolicyError) as error:
        restricting(ROOT, parse_policies(files, units=True), unit="shop.shop")
    assert str(error.value).startswith("apps/shop/policies/a.yaml:1: ")
    assert "(1 more in the Unit's policies)" in str(error.value)


def test_an_audit_only_policy_of_a_unit_adds_findings_and_denies_nothing() -> None:
    audit = OWN_CHECK.replace("enforcement: enforce", "enforcement: audit")
    combined = restricting(ROOT, _own(audit), unit="shop.shop")
    evaluation = evaluate([_deployment("web")], combined, now=NOW, deny_level=DenyLevel.HIGH)
    assert not evaluation.blocked and [f.policy for f in evaluation.results[0].findings] == ["shop.shop/replicas"]


def test_the_platforms_exceptions_do_not_cover_a_units_own_policies() -> None:
    """The platform's exception for ``old`` names its no-latest; the team's own check on old still denies."""
    own = "kind: Policy\nmetadata: {name: no-latest-either}\nspec:\n  enforcement: enforce\n  severity: HIGH\n" \
        "  code: GG1\n  validations:\n  - expression: \"object.spec.template.spec.containers.all(c, " \
        "!c.image.endsWith(':latest'))\"\n"  # fmt: skip
    old = _deployment("old", image="web:latest")
    assert _denied([old], ROOT) == set()
    assert _denied([old], restricting(ROOT, _own(own), unit="shop.shop")) == {"old"}


def test_the_combined_digest_changes_with_either_side() -> None:
    one = restricting(ROOT, _own(OWN_CHECK), unit="shop.shop")
    other = restricting(ROOT, _own(OWN_CHECK.replace("SHOP1", "SHOP2")), unit="shop.shop")
    alone = restricting(PolicySet(), _own(OWN_CHECK), unit="shop.shop")
    assert len({ROOT.digest, one.digest, other.digest, alone.digest}) == 4


# -- for any combination, what the platform denies stays denied ------------------------------------------

_EXPRESSIONS = ("true", "false", "has(object.metadata.labels)", "object.metadata.name != 'web'",
                "object.spec.template.spec.containers.all(c, c.image.endsWith(':latest'))")  # fmt: skip
_POLICY = st.builds(
    lambda name, enforcement, severity, expression, exclude, extra: (
        f"kind: Policy\nmetadata: {{name: {name}}}\nspec:\n  enforcement: {enforcement}\n  severity: {severity}\n"
        f"  code: T1\n  validations:\n  - expression: \"{expression}\"\n"
        + ("  exclude: {labels: {team: shop}}\n" if exclude else "") + extra
    ),
    st.sampled_from(["a", "b", "no-latest", "team-label", "legacy"]),
    st.sampled_from(["audit", "enforce"]),
    st.sampled_from(["LOW", "MED", "HIGH"]),
    st.sampled_from(_EXPRESSIONS),
    st.booleans(),
    st.sampled_from(["", "  mutate: {addLabels: {legacy: 'yes'}}\n", "  mutate: {addLabels: {team: shop}}\n",
                     "  live: {action: delete, gracePeriod: 0s}\n"]),
)  # fmt: skip
_EXCEPTION = st.builds(
    lambda policies, names: (
        f"kind: PolicyException\nmetadata: {{name: e}}\nspec:\n  policies: [{policies}]\n"
        f"  match: {{names: [{names}]}}\n  reason: r\n  expires: 2027-01-01T00:00:00Z\n"
    ),
    st.sampled_from(["a", "no-latest", "team-label"]),
    st.sampled_from(["web", "old", "bare"]),
)  # fmt: skip
_OBJECTS = [_deployment("web", image="web:latest"), _deployment("old", image="web:latest"),
            _deployment("bare", labels="{}"), _deployment("fine")]  # fmt: skip


@given(st.lists(st.one_of(_POLICY, _EXCEPTION), max_size=4), st.sampled_from(list(DenyLevel)))
@example(
    [
        "kind: Policy\nmetadata: {name: legacy}\nspec:\n  enforcement: audit\n  severity: LOW\n  code: T1\n"
        "  validations:\n  - expression: \"true\"\n  mutate: {addLabels: {legacy: 'yes'}}\n"
    ],
    DenyLevel.LOW,
)
def test_whatever_a_unit_adds_what_the_platform_denies_stays_denied(documents: list[str], level: DenyLevel) -> None:
    try:
        own = parse_policies({f"apps/shop/policies/{i}.yaml": API + d for i, d in enumerate(documents)}, units=True)
        combined = restricting(ROOT, own, unit="shop.shop")
    except PolicyError:
        return  # refused: the Unit's revision is refused whole, its last applied commit stays
    platform = evaluate(_OBJECTS, ROOT, now=NOW, deny_level=level)
    both = evaluate(_OBJECTS, combined, now=NOW, deny_level=level)
    assert {r.key for r in platform.blocked} <= {r.key for r in both.blocked}
    assert both.manifests == platform.manifests  # nothing a Unit adds changes what is applied
    for alone, added in zip(platform.results, both.results, strict=True):
        assert set(alone.findings) <= set(added.findings)


# -- what governs where, for the live scan ---------------------------------------------------------------


def test_a_units_namespace_is_governed_by_the_platform_and_that_unit_elsewhere_by_the_platform_alone() -> None:
    shop = restricting(ROOT, _own(OWN_CHECK), unit="shop.shop")
    found = governance(ROOT, [("shop.shop", "shop", shop), ("payments.payments", "payments", ROOT)])
    assert found.for_namespace("shop").policies == shop.policies
    assert found.for_namespace("payments") is ROOT and found.for_namespace("other") is ROOT
    assert found.digest != ROOT.digest


def test_two_units_sharing_a_namespace_both_add_under_their_own_names() -> None:
    one = restricting(ROOT, _own(OWN_CHECK), unit="a.one")
    two = restricting(ROOT, _own(OWN_CHECK.replace("SHOP1", "SHOP2")), unit="b.two")
    shared = governance(ROOT, [("b.two", "shop", two), ("a.one", "shop", one)]).for_namespace("shop")
    assert [p.name for p in own_part(shared)] == ["a.one/replicas", "b.two/replicas"]
    assert shared.exceptions == ROOT.exceptions


def test_the_live_scan_takes_the_platforms_part_as_applied_now_not_as_a_unit_last_saw_it() -> None:
    older_root = parse_policies({"policies/x.yaml": API + "kind: Policy\nmetadata: {name: x}\nspec:\n"
                                 "  builtin: {name: magtape}\n"})  # fmt: skip
    shop = restricting(older_root, _own(OWN_CHECK), unit="shop.shop")
    names = [p.name for p in governance(ROOT, [("shop.shop", "shop", shop)]).for_namespace("shop").policies]
    assert names == ["no-latest", "team-label", "shop.shop/replicas"]


@pytest.mark.parametrize("text", [
    # a second key wins in YAML: a reviewer reading the first name sees a new policy
    "kind: Policy\nmetadata: {name: mine}\nspec:\n  builtin: {name: magtape}\nmetadata: {name: no-latest}\n",
    # a merge key brings a mutation from an anchor the eye skips
    "kind: Policy\nmetadata: {name: mine}\nspec:\n  builtin: {name: magtape}\n"
    "  <<: {mutate: {addLabels: {legacy: 'yes'}}}\n",
    # an alias brings the mutation of a labels map written for something else
    "kind: Policy\nmetadata: {name: mine, labels: &l {legacy: 'yes'}}\nspec:\n  builtin: {name: magtape}\n"
    "  mutate: {addLabels: *l}\n",
    # a kind spelled with a tag is still an exception
    "kind: !!str PolicyException\nmetadata: {name: e}\nspec:\n  policies: [team-label]\n  match: {names: [web]}\n"
    "  reason: r\n  expires: 2027-01-01T00:00:00Z\n",
])  # fmt: skip
def test_yaml_tricks_are_judged_by_what_the_file_loads_as(text: str) -> None:
    with pytest.raises(PolicyError, match="can only add restrictions"):
        restricting(ROOT, _own(text), unit="shop.shop")


@pytest.mark.parametrize("name", ["No-Latest", "no-latest ", "no\u2010latest", "shop.shop/no-latest", "no-latest/x"])
def test_a_name_that_only_looks_like_a_platform_policy_adds_a_policy_of_its_own(name: str) -> None:
    text = f'kind: Policy\nmetadata: {{name: "{name}"}}\nspec:\n  enforcement: audit\n  builtin: {{name: magtape}}\n'
    combined = restricting(ROOT, _own(text), unit="shop.shop")
    assert [p.name for p in own_part(combined)] == [f"shop.shop/{name}"]
    assert combined.policies[: len(ROOT.policies)] == ROOT.policies  # the platform's, untouched


def _many(policies: int, validations: int, expression: str = "true") -> dict[str, str]:
    rules = "".join(f'  - expression: "{expression}"\n' for _ in range(validations))
    return {f"apps/shop/policies/p{i:04}.yaml": API + f"kind: Policy\nmetadata: {{name: p{i}}}\nspec:\n  code: C\n"
            f"  validations:\n{rules}" for i in range(policies)}  # fmt: skip


@pytest.mark.parametrize(("files", "where", "what"), [
    (_many(MAX_UNIT_POLICIES + 1, 1), f"p{MAX_UNIT_POLICIES:04}.yaml:1", f"at most {MAX_UNIT_POLICIES} policies"),
    (_many(3, MAX_UNIT_VALIDATIONS // 2), "p0002.yaml:1", f"at most {MAX_UNIT_VALIDATIONS} validations"),
    (_many(2, 1, "object.metadata.name != '" + "x" * (MAX_UNIT_EXPRESSION_CHARS // 2) + "'"), "p0001.yaml:1",
     f"at most {MAX_UNIT_EXPRESSION_CHARS} characters"),
])  # fmt: skip
def test_a_units_own_policies_past_their_bounds_are_refused_before_any_is_compiled(
    files: dict[str, str], where: str, what: str
) -> None:
    """A tenant's 20,000 CEL rules took 13 s to load, in the round every Unit waits on."""
    with pytest.raises(PolicyError) as error:
        parse_policies(files, units=True)
    assert str(error.value).startswith(f"apps/shop/policies/{where}: ") and what in str(error.value)
    assert parse_policies(files).policies, "the platform's own policies are the platform's to size"
