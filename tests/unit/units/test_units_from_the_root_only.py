"""units/root.py as the attacker sees it: a team with write access to its own folder only.

The repository is real files rendered by the real renderer (plain YAML, read recursively): the root path
``clusters/prod`` declares the Units; ``teams/a`` is team A's folder.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitopsguard.model import UNIT_LABEL, Manifest, ObjectKey
from gitopsguard.render import render
from gitopsguard.units import UnitRef, UnitSpec, unit_id
from gitopsguard.units.root import Root, as_served, minted_units, overlapping, units_of_root, vouched

ROOT = Root("clusters/prod", "clusters-prod")
UNIT = """apiVersion: gitopsguard.io/v1alpha1
kind: Unit
metadata: {{name: {name}, namespace: {namespace}}}
spec: {{path: {path}, serviceAccountName: {account}}}
"""
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: team-a}\ndata: {a: b}\n"


def write(repo: Path, path: str, text: str) -> None:
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(text)


def unit_file(name: str, namespace: str, path: str, account: str = "deployer") -> str:
    return UNIT.format(name=name, namespace=namespace, path=path, account=account)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    write(tmp_path, "clusters/prod/platform.yaml", unit_file("infra", "platform", "platform/infra", "cluster-admin"))
    write(tmp_path, "clusters/prod/team-a.yaml", unit_file("apps", "team-a", "teams/a", "team-a-deployer"))
    write(tmp_path, "teams/a/settings.yaml", CONFIGMAP)
    write(tmp_path, "platform/infra/ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a}\n")
    return tmp_path


def root_units(repo: Path) -> tuple[tuple[UnitRef, ...], tuple[str, ...]]:
    found = units_of_root(ROOT, render(repo, ROOT.path).manifests)
    return tuple(u.ref for u in found.units), found.refused


def team_a(repo: Path) -> tuple[Manifest, ...]:
    spec = next(u for u in units_of_root(ROOT, render(repo, ROOT.path).manifests).units if u.ref.name == "apps")
    return render(repo, spec.path).manifests


def test_the_root_paths_units_are_served(repo: Path) -> None:
    assert root_units(repo) == ((UnitRef("platform", "infra"), UnitRef("team-a", "apps")), ())


def test_a_unit_a_team_writes_into_its_own_folder_refuses_that_folders_revision(repo: Path) -> None:
    """Team A mints itself a Unit with the platform's account over the platform's folder."""
    write(repo, "teams/a/escalate.yaml", unit_file("mine", "team-a", "platform/infra", "cluster-admin"))
    team = next(u for u in units_of_root(ROOT, render(repo, ROOT.path).manifests).units if u.ref.name == "apps")
    refusals = minted_units(team, render(repo, team.path).manifests)
    assert refusals == ("teams/a/escalate.yaml:1: Unit/team-a/mine: a Unit may be declared in the root path only; "
                        "Unit/team-a/apps (path teams/a) cannot declare one. Ask the platform team to add it to "
                        "the root path",)  # fmt: skip
    assert root_units(repo)[0] == (UnitRef("platform", "infra"), UnitRef("team-a", "apps"))  # the root is unchanged


@pytest.mark.parametrize(
    ("api_version", "kind"), [("gitopsguard.io/v1beta1", "Unit"), ("gitopsguard.io/v1alpha1", "unit")]
)
def test_a_unit_spelled_in_another_version_or_case_is_refused_too(repo: Path, api_version: str, kind: str) -> None:
    write(repo, "teams/a/sneaky.yaml", f"apiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: x}}\nspec: {{}}\n")
    team = next(u for u in units_of_root(ROOT, render(repo, ROOT.path).manifests).units if u.ref.name == "apps")
    assert len(minted_units(team, render(repo, team.path).manifests)) == 1


def test_a_team_folder_without_units_is_not_refused(repo: Path) -> None:
    assert minted_units(units_of_root(ROOT, render(repo, ROOT.path).manifests).units[1], team_a(repo)) == ()


def test_a_platform_unit_over_a_folder_that_holds_a_team_folder_is_refused(repo: Path) -> None:
    """Folders render recursively: a platform Unit over teams/ would apply team A's files with its account."""
    write(repo, "clusters/prod/all-teams.yaml", unit_file("all-teams", "platform", "teams", "cluster-admin"))
    served, refused = root_units(repo)
    assert UnitRef("platform", "all-teams") not in served and UnitRef("team-a", "apps") not in served
    assert any(r.startswith("clusters/prod/all-teams.yaml:1: Unit/platform/all-teams: spec.path teams overlaps "
                            "Unit/team-a/apps's path teams/a") for r in refused), refused  # fmt: skip
    assert UnitRef("platform", "infra") in served  # the others go on


@pytest.mark.parametrize("path", ["clusters/prod", "clusters", ".", "./clusters/prod/", "clusters/prod/teams"])
def test_a_unit_over_or_inside_the_root_path_is_refused(repo: Path, path: str) -> None:
    """A Unit over the root path would apply the root's Units with a team's account (and inside it, twice)."""
    write(repo, "clusters/prod/team-b.yaml", unit_file("apps", "team-b", path, "team-b-deployer"))
    served, refused = root_units(repo)
    assert UnitRef("team-b", "apps") not in served
    assert any("Unit/team-b/apps: spec.path" in r and "overlaps the root path clusters/prod" in r for r in refused)


def test_a_unit_that_does_not_read_is_refused_by_name_and_the_others_go_on(repo: Path) -> None:
    write(repo, "clusters/prod/team-b.yaml", unit_file("apps", "team-b", "../outside", "team-b-deployer"))
    served, refused = root_units(repo)
    assert served == (UnitRef("platform", "infra"), UnitRef("team-a", "apps"))
    assert refused[0].startswith("clusters/prod/team-b.yaml:1: Unit/team-b/apps: spec.path: ")


def live_unit(name: str, namespace: str, labels: dict[str, str]) -> dict[str, object]:
    metadata = {"name": name, "namespace": namespace, "labels": labels}
    return {"apiVersion": "gitopsguard.io/v1alpha1", "kind": "Unit", "metadata": metadata, "spec": {"path": "teams/a"}}


def test_a_unit_the_root_did_not_apply_is_ignored_and_reported() -> None:
    """Someone with RBAC on Units creates one through the API, even with the root's label copied onto it."""
    applied = live_unit("apps", "team-a", {UNIT_LABEL: ROOT.unit})
    forged = live_unit("mine", "team-a", {UNIT_LABEL: ROOT.unit})
    unlabelled = live_unit("other", "team-a", {})
    result = vouched(ROOT, [applied, forged, unlabelled], {ObjectKey.of(applied)})
    assert result.served == (applied,)
    assert result.ignored == (
        "Unit/team-a/mine: ignored: the root path clusters/prod did not apply this Unit (it is not in its inventory); "
        "declare it in the root path, or delete it",
        f"Unit/team-a/other: ignored: the root path clusters/prod did not apply this Unit (it does not carry "
        f"{UNIT_LABEL}=clusters-prod); declare it in the root path, or delete it",
    )


def test_a_unit_in_the_inventory_that_lost_the_roots_label_is_ignored() -> None:
    """The label moved to another value: no longer the root's (as prune treats an object that lost it)."""
    relabelled = live_unit("apps", "team-a", {UNIT_LABEL: unit_id("team-a", "apps")})
    assert vouched(ROOT, [relabelled], {ObjectKey.of(relabelled)}).served == ()


def test_a_live_unit_edited_between_passes_is_served_with_the_roots_spec(repo: Path) -> None:
    """Someone who may patch Units points team A's at the platform's folder and account: Git's spec is served."""
    rendered = next(u for u in units_of_root(ROOT, render(repo, ROOT.path).manifests).units if u.ref.name == "apps")
    edited = {**live_unit("apps", "team-a", {UNIT_LABEL: ROOT.unit}),
              "spec": {"path": "platform/infra", "serviceAccountName": "cluster-admin", "prune": False}}  # fmt: skip
    edited["metadata"]["generation"] = 7  # type: ignore[index]
    served = as_served(rendered, edited)
    assert (served.path, served.service_account_name, served.prune) == ("teams/a", "team-a-deployer", True)
    assert served.generation == 7 and not served.suspend


def test_a_suspension_from_either_side_holds_and_a_live_resume_cannot_lift_gits() -> None:
    rendered = units_of_root(ROOT, [Manifest(ObjectKey("gitopsguard.io", "Unit", "team-a", "apps"), {
        "apiVersion": "gitopsguard.io/v1alpha1", "kind": "Unit", "metadata": {"name": "apps", "namespace": "team-a"},
        "spec": {"path": "teams/a", "suspend": True}}, "clusters/prod/a.yaml:1")]).units[0]  # fmt: skip
    assert as_served(rendered, {"spec": {"suspend": False}}).suspend  # Git says suspended: it stays so
    assert as_served(replace(rendered, suspend=False), {"spec": {"suspend": True}}).suspend  # `suspend unit`
    assert not as_served(replace(rendered, suspend=False), {"spec": {"suspend": "true"}}).suspend  # no bool: no


def spec_at(name: str, path: str) -> UnitSpec:
    return UnitSpec(UnitRef("team", name), f"clusters/prod/{name}.yaml:1", path, timedelta(minutes=5))


def test_two_units_over_the_same_folder_are_both_refused() -> None:
    found = units_of_root(ROOT, [])  # nothing rendered: nothing refused
    assert found.units == () and found.refused == ()
    refused = overlapping(ROOT, [spec_at("a", "teams/x"), spec_at("b", "teams/x"), spec_at("c", "teams/y")])
    assert set(refused) == {UnitRef("team", "a"), UnitRef("team", "b")}


folders = st.lists(st.sampled_from(["a", "b", "a/b", "a/c", "b/a", "a/b/c", ".", "clusters", "clusters/prod/x", "ab"]),
                   max_size=6)  # fmt: skip


@given(folders)
def test_a_unit_is_refused_exactly_when_its_folder_holds_or_lies_in_another_or_the_roots(paths: list[str]) -> None:
    specs = [spec_at(f"u{i}", path) for i, path in enumerate(paths)]

    def nested(one: str, two: str) -> bool:  # the definition, pair by pair
        a, b = PurePosixPath(one), PurePosixPath(two)
        return one == "." or two == "." or a == b or a in b.parents or b in a.parents

    expected = {s.ref for s in specs if nested(s.path, ROOT.path) or any(
        nested(s.path, o.path) for o in specs if o.ref != s.ref)}  # fmt: skip
    assert set(overlapping(ROOT, specs)) == expected


def test_each_refused_unit_whose_name_reads_is_named_so_its_status_can_say_why(repo: Path) -> None:
    write(repo, "clusters/prod/over.yaml", unit_file("over", "team-a", "teams"))  # holds teams/a: both refused
    write(repo, "clusters/prod/bad.yaml", UNIT.format(name="bad", namespace="team-b", path="../x", account="d"))
    write(repo, "clusters/prod/nameless.yaml", UNIT.format(name="No_Name", namespace="b", path="x", account="d"))
    found = units_of_root(ROOT, render(repo, ROOT.path).manifests)
    assert set(found.refused_units) == {UnitRef("team-a", "over"), UnitRef("team-a", "apps"), UnitRef("team-b", "bad")}
    assert "overlaps" in found.refused_units[UnitRef("team-a", "apps")]
    assert "spec.path" in found.refused_units[UnitRef("team-b", "bad")]
    assert len(found.refused) == 4, found.refused  # the nameless one is refused all the same, by its file
