"""The pure parts of the Units loop (``fleet.py``): which Units it refuses before any pass, and the recipe's
unit it makes of a Unit."""

from __future__ import annotations

from datetime import timedelta

from gitopsguard.fleet import refused_targets, unit_of
from gitopsguard.reconcile import Unit
from gitopsguard.units import UnitRef, UnitSpec


def spec(namespace: str, name: str, **fields: object) -> UnitSpec:
    return UnitSpec(UnitRef(namespace, name), "root/units.yaml:1", f"teams/{name}", timedelta(minutes=5),
                    **fields)  # type: ignore[arg-type]  # fmt: skip


def test_a_unit_aimed_at_the_controllers_own_namespace_is_refused_by_target_or_by_its_own_namespace() -> None:
    units = [spec("team-a", "fine", target_namespace="team-a"), spec("team-a", "sneaky",
             target_namespace="gitopsguard-system"), spec("gitopsguard-system", "inside")]  # fmt: skip
    refused = refused_targets(units)
    assert set(refused) == {UnitRef("team-a", "sneaky"), UnitRef("gitopsguard-system", "inside")}
    assert refused[UnitRef("team-a", "sneaky")].startswith("root/units.yaml:1: Unit/team-a/sneaky: ")


def test_a_units_pass_uses_its_id_folder_target_and_switches_but_the_roots_policies() -> None:
    root = Unit("clusters-prod", "clusters/prod", "default", policies_path="policies")
    unit = unit_of(spec("team-a", "apps", report_only=True, prune=False), root)
    assert (unit.name, unit.path, unit.default_namespace) == ("team-a.apps", "teams/apps", "team-a")
    assert (unit.report_only, unit.prune, unit.policies_path) == (True, False, "policies")
    targeted = unit_of(spec("team-a", "apps", target_namespace="shop", policies_path="teams/apps/policies"), root)
    assert targeted.default_namespace == "shop" and targeted.policies_path == "policies"
