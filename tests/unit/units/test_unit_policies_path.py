"""Where a Unit's own policies may live: its team's folder, never the platform's, another team's, or a path
that leads elsewhere through a symbolic link. Attacker: a tenant who writes its own folder, or a platform
change that points one team's Unit at another team's files (issue 19)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitopsguard.errors import PolicyError, UnitError
from gitopsguard.model import Manifest, ObjectKey
from gitopsguard.policy.load import load_own_policies
from gitopsguard.units import UnitRef
from gitopsguard.units.policies_path import misplaced_policies
from gitopsguard.units.spec import UnitSpec, parse_unit

SHOP = UnitRef("shop", "shop")
POLICY = "apiVersion: gitopsguard.io/v1alpha1\nkind: Policy\nmetadata: {name: p}\nspec:\n  builtin: {name: magtape}\n"


def _spec(ref: UnitRef, path: str, policies: str | None = None) -> UnitSpec:
    body = {"apiVersion": "gitopsguard.io/v1alpha1", "kind": "Unit",
            "metadata": {"name": ref.name, "namespace": ref.namespace},
            "spec": {"path": path, **({"policiesPath": policies} if policies is not None else {})}}  # fmt: skip
    return parse_unit(Manifest(ObjectKey.of(body), body, f"clusters/prod/{ref.name}.yaml:1"))


@pytest.mark.parametrize(("policies", "says"), [
    ("clusters/prod", "overlaps the root path clusters/prod"),
    ("clusters", "overlaps the root path clusters/prod"),
    ("clusters/prod/shop", "overlaps the root path clusters/prod"),
    (".", "overlaps the root path"),
    ("policies", "overlaps the platform's policies policies"),
    ("policies/teams", "overlaps the platform's policies policies"),
    ("apps/payments/dev", "overlaps Unit/payments/payments's path apps/payments/dev"),
    ("apps/payments/dev/policies", "overlaps Unit/payments/payments's path apps/payments/dev"),
    ("apps", "overlaps Unit/"),
    ("apps/shop/dev", "holds the Unit's own path apps/shop/dev"),
    ("apps/shop", "holds the Unit's own path apps/shop/dev"),
])  # fmt: skip
def test_a_policies_path_outside_the_units_team_folder_is_refused_naming_the_unit(policies: str, says: str) -> None:
    specs = [_spec(SHOP, "apps/shop/dev", policies), _spec(UnitRef("payments", "payments"), "apps/payments/dev")]
    found = misplaced_policies("clusters/prod", "policies", specs)
    assert set(found) == {SHOP}
    assert found[SHOP].startswith(f"clusters/prod/shop.yaml:1: Unit/shop/shop: spec.policiesPath {policies} ")
    assert says in found[SHOP], found[SHOP]


@pytest.mark.parametrize("policies", ["apps/shop/policies", "apps/shop/dev/policies", "teams/shop-policies"])
def test_a_policies_path_of_the_teams_own_is_accepted(policies: str) -> None:
    specs = [_spec(SHOP, "apps/shop/dev", policies), _spec(UnitRef("payments", "payments"), "apps/payments/dev"),
             _spec(UnitRef("shop", "shop-prod"), "apps/shop/prod", "apps/shop/policies")]  # fmt: skip
    assert misplaced_policies("clusters/prod", "policies", specs) == {}


@pytest.mark.parametrize(("policies", "says"), [
    ("../payments/policies", "leaves the repository"),
    ("/etc/gitopsguard", "is an absolute path"),
    ("apps/shop/*", "not a plain path"),
])  # fmt: skip
def test_a_policies_path_leaving_the_repository_is_refused_when_the_unit_is_read(policies: str, says: str) -> None:
    with pytest.raises(UnitError, match=r"spec\.policiesPath") as error:
        _spec(SHOP, "apps/shop/dev", policies)
    assert says in str(error.value)


def _checkout(tmp_path: Path) -> Path:
    (tmp_path / "apps/shop/policies").mkdir(parents=True)
    (tmp_path / "apps/payments/policies").mkdir(parents=True)
    (tmp_path / "apps/payments/policies/strict.yaml").write_text(POLICY)
    return tmp_path


@pytest.mark.parametrize(("link", "target"), [
    ("apps/shop/policies", "../payments/policies"),  # the folder itself
    ("apps/shop", "payments"),  # a folder on the way to it
    ("apps/shop/policies", "/etc"),  # outside the checkout
    ("apps/shop/policies", "../nowhere"),  # dangling
])  # fmt: skip
def test_a_symbolic_link_on_the_way_to_a_units_policies_is_refused(tmp_path: Path, link: str, target: str) -> None:
    checkout = _checkout(tmp_path)
    if (checkout / link).exists():
        (checkout / link).rename(checkout / "moved")
    (checkout / link).symlink_to(target)
    with pytest.raises(PolicyError, match="is a symlink") as error:
        load_own_policies(checkout, "apps/shop/policies")
    assert str(error.value).startswith(f"{link}: ")


def test_a_symbolic_link_inside_a_units_policies_is_refused(tmp_path: Path) -> None:
    checkout = _checkout(tmp_path)
    (checkout / "apps/shop/policies/borrowed.yaml").symlink_to("../../payments/policies/strict.yaml")
    with pytest.raises(PolicyError, match="is a symlink"):
        load_own_policies(checkout, "apps/shop/policies")


def test_a_file_where_a_units_policies_folder_belongs_is_refused(tmp_path: Path) -> None:
    checkout = _checkout(tmp_path)
    (checkout / "apps/shop/policies").rmdir()
    (checkout / "apps/shop/policies").write_text(POLICY)
    with pytest.raises(PolicyError, match="is not a folder"):
        load_own_policies(checkout, "apps/shop/policies")


def test_a_units_policies_folder_not_there_adds_nothing(tmp_path: Path) -> None:
    checkout = _checkout(tmp_path)
    assert load_own_policies(checkout, "apps/shop/missing").policies == ()
    assert [p.name for p in load_own_policies(checkout, "apps/payments/policies").policies] == ["p"]
