"""repo-template/'s Units layout (issue 19): the root path clusters/dev-units declares the platform Unit and one
Unit per team, the real renderer renders each folder, and the template's own policies pass them.

The attacker is a team that may change its own folder (apps/<team>/) only: its Unit must act as its own
account, its folder must hold nothing that account could not write (so that it is Ready at all), and the files
that choose the accounts (the root path, platform/) must need the security reviewers."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from gitopsguard.cli import main
from gitopsguard.model import Manifest
from gitopsguard.render import render
from gitopsguard.units import UnitRef, UnitSpec, apply_order
from gitopsguard.units.root import Root, minted_units, units_of_root

TEMPLATE = Path(__file__).parents[2] / "repo-template"
ROOT = Root("clusters/dev-units", "dev-units")
TEAMS = ("shop", "payments")
PLATFORM = UnitRef("platform", "platform")
IMPERSONATE = "gitopsguard-impersonate-tenants"


def declared() -> dict[UnitRef, UnitSpec]:
    found = units_of_root(ROOT, render(TEMPLATE, ROOT.path).manifests)
    assert found.refused == (), found.refused
    return {unit.ref: unit for unit in found.units}


def rendered(spec: UnitSpec) -> tuple[Manifest, ...]:
    return render(TEMPLATE, spec.path).manifests


def test_the_root_path_declares_the_platform_and_two_team_units_and_refuses_none() -> None:
    units = declared()
    assert set(units) == {PLATFORM, *(UnitRef(team, team) for team in TEAMS)}
    assert units[PLATFORM].service_account_name is None, "the platform Unit acts as gitopsguard"
    for team in TEAMS:
        spec = units[UnitRef(team, team)]
        assert (spec.path, spec.service_account_name, spec.target_namespace) == (
            f"apps/{team}/dev", f"{team}-deployer", team)  # fmt: skip
        assert spec.depends_on == (PLATFORM,)
    order = apply_order(tuple(units.values()))
    assert not order.refused and order.order[0] == PLATFORM


def test_the_root_path_holds_only_units_and_the_namespaces_they_live_in() -> None:
    """A Unit object can only be created in a namespace that exists: the root applies those Namespaces first."""
    manifests = render(TEMPLATE, ROOT.path).manifests
    namespaces = {m.key.name for m in manifests if m.key.kind == "Namespace"}
    assert {m.key.kind for m in manifests} == {"Namespace", "Unit"}
    assert {m.key.namespace for m in manifests if m.key.kind == "Unit"} == namespaces


@pytest.mark.parametrize("team", TEAMS)
def test_a_team_folder_renders_only_objects_of_its_own_namespace_and_declares_no_unit(team: str) -> None:
    """The team's account may write in its namespace only: a Namespace (the base has one) or any cluster-wide
    object in its render would leave the Unit refused for good."""
    spec = declared()[UnitRef(team, team)]
    manifests = rendered(spec)
    assert minted_units(spec, manifests) == ()
    assert {m.key.kind for m in manifests} == {"ConfigMap", "Deployment", "Service"}
    assert {m.key.namespace for m in manifests} == {team}
    (deployment,) = [m.body for m in manifests if m.key.kind == "Deployment"]
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["template"]["metadata"]["labels"]["team"] == team


def test_the_platform_folder_gives_each_team_account_and_gitopsguard_the_right_to_act_as_it() -> None:
    units = declared()
    manifests = rendered(units[PLATFORM])
    assert minted_units(units[PLATFORM], manifests) == ()
    bodies = {(m.key.kind, m.key.namespace, m.key.name): m.body for m in manifests}
    for team in TEAMS:
        account = units[UnitRef(team, team)].service_account_name
        assert account is not None
        assert ("ServiceAccount", team, account) in bodies
        own = bodies[("RoleBinding", team, account)]
        assert own["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": "gitopsguard-tenant"}  # fmt: skip
        assert own["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": team}]
        controller = bodies[("RoleBinding", team, IMPERSONATE)]
        assert controller["roleRef"]["name"] == IMPERSONATE
        assert controller["subjects"] == [{"kind": "ServiceAccount", "name": "gitopsguard",
                                           "namespace": "gitopsguard-system"}]  # fmt: skip
    assert {m.key.kind for m in manifests} == {"ServiceAccount", "RoleBinding"}


def _rules(path: Path, name: str) -> list[dict[str, Any]]:
    (role,) = [d for d in yaml.safe_load_all(path.read_text()) if d and d["metadata"]["name"] == name
               and d["kind"] == "ClusterRole"]  # fmt: skip
    return list(role["rules"])


def _grants(rules: list[dict[str, Any]]) -> set[tuple[str, str, str, str]]:
    return {(g, r, v, n) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]
            for v in rule["verbs"] for n in rule.get("resourceNames", ["*"])}  # fmt: skip


def test_a_team_account_may_do_no_more_than_gitopsguard_so_the_platform_unit_may_bind_it_without_bind() -> None:
    """The API server refuses a RoleBinding granting more than its writer holds (unless it may `bind`): were
    gitopsguard-tenant to grant what gitopsguard lacks (Secrets, RBAC), the platform Unit would be refused."""
    tenant = _grants(_rules(TEMPLATE / "operator" / "units-rbac.yaml", "gitopsguard-tenant"))
    controller = _grants(_rules(TEMPLATE.parent / "manifests" / "controller-rbac.yaml", "gitopsguard-controller"))
    assert tenant and tenant <= controller, tenant - controller
    assert not {g for g in tenant if g[1] in ("secrets", "serviceaccounts", "rolebindings", "roles")}


def test_gitopsguard_may_bind_the_impersonation_role_by_name_only() -> None:
    extra = _grants(_rules(TEMPLATE / "operator" / "units-rbac.yaml", "gitopsguard-units-rbac"))
    binds = {g for g in extra if g[2] in ("bind", "escalate", "impersonate", "*")}
    assert binds == {("rbac.authorization.k8s.io", "clusterroles", "bind", IMPERSONATE)}
    assert {g[1] for g in extra} == {"rolebindings", "clusterroles"}, "no Roles, ClusterRoles or their bindings"


def test_gitopsguard_check_passes_the_units_folders_with_the_templates_policies() -> None:
    folders = [ROOT.path, "platform", *(f"apps/{team}/dev" for team in TEAMS)]
    result = CliRunner().invoke(main, ["check", *(str(TEMPLATE / f) for f in folders), "--policies",
                                       str(TEMPLATE / "policies")])  # fmt: skip
    assert result.exit_code == 0, result.output


def test_gitopsguard_check_root_passes_the_template_as_the_units_loop_would_serve_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the README tells a contributor to run in a pull request: every Unit judged as the loop would."""
    monkeypatch.chdir(TEMPLATE)
    result = CliRunner().invoke(main, ["check", "--root", ROOT.path])
    assert result.exit_code == 0, result.output
    for unit in (PLATFORM, *(UnitRef(team, team) for team in TEAMS)):
        assert f"\n{unit} (clusters/dev-units/" in result.output, result.output
    assert "3 Units: 3 pass, 0 refused (deny level LOW)" in result.output


def test_gitopsguard_check_root_refuses_a_shop_deployment_that_only_shops_own_policy_denies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = tmp_path / "template"
    shutil.copytree(TEMPLATE, checkout)
    deployment = checkout / "apps/shop/base/deployment.yaml"
    deployment.write_text(deployment.read_text().replace("RootFilesystem: true", "RootFilesystem: false"))
    monkeypatch.chdir(checkout)
    result = CliRunner().invoke(main, ["check", "--root", ROOT.path])
    assert result.exit_code == 1, result.output
    shop = "Unit/shop/shop (clusters/dev-units/shop.yaml:5, path apps/shop/dev): REFUSED (PolicyDenied)"
    assert shop in result.output
    assert "SHOP001 HIGH shop's containers run with a read-only root file system (policy shop.shop/read-only-root" in (
        result.output)  # fmt: skip
    assert "3 Units: 2 pass, 1 refused" in result.output


def test_the_root_path_and_the_platform_folder_need_the_security_reviewers(tmp_path: Path) -> None:
    """Whoever may approve the root path chooses each Unit's account (none: gitopsguard itself); whoever may
    approve platform/ chooses what each account may do. A team lead may approve its own folder only."""
    from gitopsguard.commands.review import ReviewOptions, reviewer_for
    from gitopsguard.evidence.trust import load_trust

    data = yaml.safe_load((TEMPLATE / "operator" / "trust.example.yaml").read_text())
    for signer in data["signers"]:
        key = tmp_path / signer["user"]
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        signer["keys"] = [(tmp_path / f"{signer['user']}.pub").read_text().strip()]
    trust = tmp_path / "trust.yaml"
    trust.write_text(yaml.safe_dump(data))
    reviewer = reviewer_for(ReviewOptions("signed-merge", trust), tmp_path / "state")
    assert reviewer is not None
    people = {s.identity.user: s.identity for s in load_trust(trust)}

    def may_approve(person: str, path: str) -> bool:
        return reviewer.settings.rules.unmet(path, (people[person],)) == ""

    for path in ("clusters/dev-units/shop.yaml", "clusters/dev-units/new-team.yaml", "platform/shop.yaml"):
        assert may_approve("carol", path) and not may_approve("bob", path) and not may_approve("dana", path), path
    assert may_approve("bob", "apps/shop/dev/kustomization.yaml") and not may_approve("dana", "apps/shop/dev/x.yaml")
