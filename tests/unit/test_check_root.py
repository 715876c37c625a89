"""``gitopsguard check --root PATH``: a pull request laid out in Units is refused by ``check`` for what the Units
loop (``fleet.py``) would refuse, with the loop's own words, before anyone merges it (issue 19).

The attacker is a contributor without approval rights whose pull request the reviewers trust once ``check`` is
green: a team writing into its own folder (a Unit of its own, an exception to the platform's policies, a
symlink out of the checkout), or a change to the root path (a cycle, an overlap, a Unit aimed at the
controller's namespace). Each test writes a real repository (``tests/gitrepo.py``), runs the real command in
its working tree, and looks for the message the loop's status would carry (the same messages
``tests/integration/test_units_*.py`` find on the dev cluster).

The tree: the root path ``root`` declares Units ``strict`` (folder ``strict``, its own policies in
``strict-policies``) and ``loose`` (folder ``loose``), both in namespace ``team``. The platform's policies
(``policies/``) want an ``owner`` label on every ConfigMap not labelled ``legacy: "yes"``; strict's own want a
``version`` key in every ConfigMap.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gitopsguard.cli import main
from tests.gitrepo import Upstream

API = "apiVersion: gitopsguard.io/v1alpha1\n"
OWNER_LABEL = (
    API
    + """kind: Policy
metadata: {name: owner-label}
spec:
  enforcement: enforce
  severity: HIGH
  match: {kinds: [ConfigMap]}
  exclude: {labels: {legacy: "yes"}}
  builtin: {name: required-labels, params: {labels: [owner]}}
"""
)
VERSION_KEY = (
    API
    + """kind: Policy
metadata: {name: version-key}
spec:
  enforcement: enforce
  severity: HIGH
  code: STRICT1
  match: {kinds: [ConfigMap]}
  validations:
    - expression: "has(object.data) && 'version' in object.data"
      message: every ConfigMap of team strict says its version
"""
)


def configmap(name: str, *, namespace: str | None = "team", owner: bool = True, version: bool = True) -> str:
    where = f"\n  namespace: {namespace}" if namespace else ""
    labels = "\n  labels: {owner: team}" if owner else ""
    extra = '\n  version: "1"' if version else ""
    return f'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}{where}{labels}\ndata:\n  value: "1"{extra}\n'


def unit(name: str, spec: str, namespace: str = "team") -> str:
    return f"{API}kind: Unit\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec: {spec}\n"


STRICT = unit("strict", "{path: strict, policiesPath: strict-policies}")
LOOSE = unit("loose", "{path: loose}")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Upstream:
    """A real repository whose working tree is the checkout ``check`` runs in; every Unit passes as written."""
    upstream = Upstream(tmp_path / "git")
    upstream.write("root/units.yaml", f"{STRICT}---\n{LOOSE}")
    upstream.write("policies/owner.yaml", OWNER_LABEL)
    upstream.write("strict-policies/version.yaml", VERSION_KEY)
    upstream.write("strict/cm.yaml", configmap("strict"))
    upstream.write("loose/cm.yaml", configmap("loose", version=False))
    upstream.commit()
    monkeypatch.chdir(upstream.work)
    return upstream


def check(*args: str) -> Result:
    return CliRunner().invoke(main, ["check", "--root", "root", *args])


def verdict(output: str, subject: str) -> str:
    """The block ``check`` prints for one Unit (or the root path): its line and the indented lines under it."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith((subject + " ", subject + ":")))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")), len(lines))
    return "\n".join(lines[start:end])


def test_a_tree_the_loop_would_apply_passes_naming_each_unit_its_file_and_folder(repo: Upstream) -> None:
    result = check()
    assert result.exit_code == 0, result.output
    assert verdict(result.output, "Unit/team/strict").startswith(
        "Unit/team/strict (root/units.yaml:1, path strict): passes"
    )
    assert verdict(result.output, "Unit/team/loose").startswith(
        "Unit/team/loose (root/units.yaml:6, path loose): passes"
    )
    assert verdict(result.output, "root path root").startswith("root path root: passes")
    assert "2 Units: 2 pass, 0 refused" in result.output


def test_a_unit_denied_by_its_own_policy_is_refused_naming_the_object_and_the_policy_and_the_other_passes(
    repo: Upstream,
) -> None:
    repo.write("strict/cm.yaml", configmap("strict", version=False))
    result = check()
    assert result.exit_code == 1, result.output
    strict = verdict(result.output, "Unit/team/strict")
    assert "REFUSED (PolicyDenied)" in strict.splitlines()[0]
    assert (
        "strict/cm.yaml:1: ConfigMap/team/strict: STRICT1 HIGH every ConfigMap of team strict says its version"
        in strict
    )
    assert "(policy team.strict/version-key; fix: see the policy at strict-policies/version.yaml:10)" in strict
    assert verdict(result.output, "Unit/team/loose").startswith("Unit/team/loose (root/units.yaml:6, path loose): "
                                                                "passes")  # fmt: skip
    assert "2 Units: 1 pass, 1 refused" in result.output


@pytest.mark.parametrize(("file", "text", "says"), [
    ("exception.yaml", API + "kind: PolicyException\nmetadata: {name: mine}\nspec:\n  policies: [owner-label]\n"
     "  match: {names: [strict]}\n  reason: we know\n  expires: 2099-01-01T00:00:00Z\n", "PolicyException mine"),
    ("legacy.yaml", API + "kind: Policy\nmetadata: {name: tag-legacy}\nspec:\n"
     "  mutate: {addLabels: {legacy: \"yes\"}}\n", "policy tag-legacy mutates objects"),
    ("owner.yaml", OWNER_LABEL.replace("enforce\n", "audit\n"), "policy owner-label is the platform's already"),
])  # fmt: skip
def test_a_team_policy_file_that_would_loosen_the_platforms_is_refused_with_its_file_and_line(
    repo: Upstream, file: str, text: str, says: str
) -> None:
    repo.write(f"strict-policies/{file}", text)
    repo.write("strict/cm.yaml", configmap("strict", owner=False))
    strict = verdict(check().output, "Unit/team/strict")
    assert "REFUSED (BuildFailed)" in strict.splitlines()[0]
    assert f"  strict-policies/{file}:1: {says}" in strict and "can only add restrictions" in strict


def test_a_policies_path_in_another_units_folder_is_refused_and_the_other_unit_passes(repo: Upstream) -> None:
    repo.write("root/units.yaml", f"{STRICT.replace('strict-policies', 'loose/policies')}---\n{LOOSE}")
    result = check()
    assert result.exit_code == 1
    strict = verdict(result.output, "Unit/team/strict")
    assert "REFUSED (InvalidSpec)" in strict.splitlines()[0]
    assert "spec.policiesPath loose/policies overlaps Unit/team/loose's path loose" in strict
    assert "passes" in verdict(result.output, "Unit/team/loose")


def test_a_unit_that_does_not_read_is_refused_naming_its_file_line_and_field(repo: Upstream) -> None:
    repo.write("root/units.yaml", f"{STRICT}---\n{unit('loose', '{path: loose, interval: 5 minutes}')}")
    loose = verdict(check().output, "Unit/team/loose")
    assert "REFUSED (InvalidSpec)" in loose
    assert 'root/units.yaml:6: Unit/team/loose: spec.interval: "5 minutes" is not a duration' in loose


def test_a_unit_whose_name_cannot_be_read_is_refused_by_its_file_and_line(repo: Upstream) -> None:
    cyrillic = unit("l\u043e\u043ese", "{path: loose}")  # o's that are not ASCII: not an object name
    repo.write("root/units.yaml", f"{STRICT}---\n{cyrillic}")
    result = check()
    assert result.exit_code == 1
    assert "root/units.yaml:6: " in verdict(result.output, "Unit object root/units.yaml:6")


def test_overlapping_folders_are_refused_naming_both_units(repo: Upstream) -> None:
    repo.write("root/units.yaml", f"{STRICT}---\n{unit('loose', '{path: strict/inner}')}")
    result = check()
    assert "spec.path strict/inner overlaps Unit/team/strict's path strict" in verdict(result.output, "Unit/team/loose")
    assert "spec.path strict overlaps Unit/team/loose's path strict/inner" in verdict(result.output, "Unit/team/strict")
    assert result.exit_code == 1


def test_a_dependency_cycle_is_refused_naming_it(repo: Upstream) -> None:
    repo.write("root/units.yaml", unit("strict", "{path: strict, dependsOn: [{name: loose}]}") + "---\n"
               + unit("loose", "{path: loose, dependsOn: [{name: strict}]}"))  # fmt: skip
    result = check()
    assert result.exit_code == 1
    for name in ("strict", "loose"):
        assert "dependsOn forms a cycle: Unit/team/loose -> Unit/team/strict -> Unit/team/loose" in verdict(
            result.output, f"Unit/team/{name}")  # fmt: skip


def test_a_missing_dependency_is_refused_and_so_is_every_unit_behind_it(repo: Upstream) -> None:
    repo.write("root/units.yaml", unit("strict", "{path: strict, dependsOn: [{name: ghost}]}") + "---\n"
               + unit("loose", "{path: loose, dependsOn: [{name: strict}]}"))  # fmt: skip
    result = check()
    assert "dependsOn Unit/team/ghost: no such Unit in the root path" in verdict(result.output, "Unit/team/strict")
    assert "REFUSED (InvalidSpec)" in verdict(result.output, "Unit/team/loose")
    assert result.exit_code == 1


def test_a_unit_aimed_at_the_controllers_namespace_is_refused(repo: Upstream) -> None:
    repo.write("root/units.yaml", f"{STRICT}---\n{unit('loose', '{path: loose, targetNamespace: gitopsguard-system}')}")
    loose = verdict(check().output, "Unit/team/loose")
    assert "spec.targetNamespace gitopsguard-system" in loose and "REFUSED (InvalidSpec)" in loose


def test_a_unit_a_team_mints_in_its_own_folder_refuses_that_folder_whole(repo: Upstream) -> None:
    repo.write("loose/mine.yaml", unit("mine", "{path: strict-policies}"))
    result = check()
    assert result.exit_code == 1
    loose = verdict(result.output, "Unit/team/loose")
    assert "REFUSED (InvalidSpec)" in loose
    assert "loose/mine.yaml:1: Unit/team/mine: a Unit may be declared in the root path only" in loose
    assert "Unit/team/mine " not in result.output, "a Unit outside the root path is not checked as one"


def test_a_team_folder_writing_into_the_controllers_namespace_is_refused(repo: Upstream) -> None:
    repo.write("loose/cm.yaml", configmap("loose", namespace="gitopsguard-system"))
    loose = verdict(check().output, "Unit/team/loose")
    assert "REFUSED (BuildFailed)" in loose and "the controller's own namespace" in loose


def test_objects_without_a_namespace_are_judged_in_the_units_target_namespace(repo: Upstream) -> None:
    """A platform policy for namespace shop alone: loose's ConfigMap names no namespace, and lands in shop."""
    repo.write(
        "policies/shop.yaml",
        OWNER_LABEL.replace("owner-label", "shop-tier")
        .replace("[owner]", "[tier]")
        .replace("match: {kinds: [ConfigMap]}", "match: {kinds: [ConfigMap], namespaces: [shop]}"),
    )
    repo.write("loose/cm.yaml", configmap("loose", namespace=None))
    assert check().exit_code == 0
    repo.write("root/units.yaml", f"{STRICT}---\n{unit('loose', '{path: loose, targetNamespace: shop}')}")
    result = check()
    assert "loose/cm.yaml:1: ConfigMap/shop/loose: " in verdict(result.output, "Unit/team/loose")
    assert result.exit_code == 1


def test_the_root_paths_own_objects_are_gated_by_the_platforms_policies(repo: Upstream) -> None:
    repo.write("root/settings.yaml", configmap("settings", owner=False))
    result = check()
    assert result.exit_code == 1
    root = verdict(result.output, "root path root")
    assert "REFUSED (PolicyDenied)" in root and "root/settings.yaml:1: ConfigMap/team/settings" in root


def test_a_symlinked_policies_path_is_refused(repo: Upstream) -> None:
    (repo.work / "strict-policies-link").symlink_to("loose")
    repo.write("root/units.yaml", f"{STRICT.replace('strict-policies', 'strict-policies-link')}---\n{LOOSE}")
    strict = verdict(check().output, "Unit/team/strict")
    assert "REFUSED (BuildFailed)" in strict
    assert "strict-policies-link: is a symlink, on the way to a Unit's policiesPath" in strict


def test_a_symlinked_unit_folder_pointing_out_of_the_checkout_is_refused(repo: Upstream, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "cm.yaml").write_text(configmap("outside"))
    (repo.work / "elsewhere").symlink_to(outside)
    repo.write("root/units.yaml", f"{STRICT}---\n{unit('loose', '{path: elsewhere}')}")
    loose = verdict(check().output, "Unit/team/loose")
    assert "REFUSED (BuildFailed)" in loose and "elsewhere" in loose
    assert "ConfigMap/team/outside" not in loose


def test_a_file_past_the_read_limit_in_a_team_folder_is_refused_naming_it(repo: Upstream) -> None:
    repo.write("loose/huge.yaml", "# " + "x" * (4 * 2**20) + "\n")
    loose = verdict(check().output, "Unit/team/loose")
    assert "REFUSED (BuildFailed)" in loose and "loose/huge.yaml" in loose


def test_a_suspended_unit_is_still_checked(repo: Upstream) -> None:
    """Its folder is applied on resume: a pull request that breaks it must not wait until then to learn."""
    repo.write("root/units.yaml", f"{STRICT}---\n{unit('loose', '{path: loose, suspend: true}')}")
    repo.write("loose/cm.yaml", configmap("loose", owner=False))
    loose = verdict(check().output, "Unit/team/loose")
    assert "REFUSED (PolicyDenied)" in loose and "suspended" in loose


def test_a_policies_folder_given_that_is_not_there_is_an_error_not_a_pass(repo: Upstream) -> None:
    """A typo in CI's --policies would otherwise check every Unit against nothing, and pass."""
    repo.write("loose/cm.yaml", configmap("loose", owner=False))
    result = check("--policies", "polices")
    assert result.exit_code == 2 and "--policies polices: no such folder in the checkout" in result.output


def test_the_platforms_policies_are_read_from_the_policies_folder_by_default_as_run_reads_them(
    repo: Upstream,
) -> None:
    repo.write("loose/cm.yaml", configmap("loose", owner=False))
    assert "owner-label HIGH missing required labels: owner" in verdict(check().output, "Unit/team/loose")
    repo.write("audit-policies/owner.yaml", OWNER_LABEL.replace("enforce\n", "audit\n"))
    assert check("--policies", "audit-policies").exit_code == 0, "the platform's policies are those given"


def test_the_json_form_gives_each_unit_its_verdict_reason_message_and_objects_for_ci(repo: Upstream) -> None:
    repo.write("strict/cm.yaml", configmap("strict", version=False))
    repo.write("root/units.yaml", f"{STRICT}---\n{LOOSE}---\n{unit('ghost', '{path: g, dependsOn: [{name: x}]}')}")
    result = check("--format", "json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert report["schema"] == "gitopsguard.io/check-units/v1" and report["denyLevel"] == "LOW"
    assert report["summary"] == {"units": 3, "passed": 1, "refused": 2, "rootRefused": False}
    assert report["root"]["path"] == "root" and report["root"]["verdict"] == "passed"
    units = {(u["namespace"], u["name"]): u for u in report["units"]}
    strict = units[("team", "strict")]
    assert {k: strict[k] for k in ("file", "line", "path", "suspended", "verdict", "reason")} == {
        "file": "root/units.yaml", "line": 1, "path": "strict", "suspended": False, "verdict": "refused",
        "reason": "PolicyDenied"}  # fmt: skip
    (denied,) = [o for o in strict["objects"] if o["verdict"] == "denied"]
    assert (denied["kind"], denied["name"], denied["file"], denied["line"]) == ("ConfigMap", "strict", "strict/cm.yaml",
                                                                                1)  # fmt: skip
    assert [f["policy"] for f in denied["findings"] if f["blocking"]] == ["team.strict/version-key"]
    assert units[("team", "loose")]["verdict"] == "passed" and units[("team", "loose")]["objects"][0]["name"] == "loose"
    ghost = units[("team", "ghost")]
    assert ghost["reason"] == "InvalidSpec" and "dependsOn Unit/team/x: no such Unit" in ghost["message"]
    assert ghost["objects"] == []


@pytest.mark.parametrize("args", [["apps"], ["--pack", "pss-baseline"], ["--root", "/tmp"],
                                  ["--root", ""], ["--root", "../elsewhere"]])  # fmt: skip
def test_options_the_loop_has_no_counterpart_for_are_refused_with_root(repo: Upstream, args: list[str]) -> None:
    result = check(*args)
    assert result.exit_code == 2, result.output


def test_the_labels_of_a_namespace_the_root_path_applies_count_for_a_units_pods(repo: Upstream) -> None:
    """The loop applies the root path first: a Unit's gate then sees its Namespaces live, Pod Security labels too."""
    repo.write("root/namespace.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n  labels:\n"
               "    owner: team\n    pod-security.kubernetes.io/enforce: baseline\n")  # fmt: skip
    repo.write("loose/pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: root, namespace: team}\nspec:\n"
               "  containers: [{name: sh, image: sh, securityContext: {privileged: true}}]\n")  # fmt: skip
    result = check()
    assert result.exit_code == 1, result.output
    loose = verdict(result.output, "Unit/team/loose")
    assert "REFUSED (PolicyDenied)" in loose and "loose/pod.yaml:1: Pod/team/root: " in loose


def test_a_root_path_that_does_not_render_is_refused_and_declares_no_unit(repo: Upstream) -> None:
    repo.write("root/broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [x\n")
    result = check()
    assert result.exit_code == 1
    root = verdict(result.output, "root path root")
    assert "REFUSED (BuildFailed)" in root and "root/broken.yaml:" in root
    assert "0 Units: 0 pass, 0 refused" in result.output


def test_a_platform_policies_folder_replaced_by_a_symlink_refuses_the_root_and_every_unit(
    repo: Upstream, tmp_path: Path
) -> None:
    """A pull request that points policies/ at a folder of its choosing is judged by nothing, if followed."""
    (tmp_path / "lenient").mkdir()
    (repo.work / "policies" / "owner.yaml").unlink()
    (repo.work / "policies").rmdir()
    (repo.work / "policies").symlink_to(tmp_path / "lenient")
    result = check()
    assert result.exit_code == 1
    assert "policies: is a symlink or leaves the checkout" in verdict(result.output, "root path root")
    for name in ("strict", "loose"):
        assert "REFUSED (BuildFailed)" in verdict(result.output, f"Unit/team/{name}")


CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: SCOPE
  names: {kind: Widget, plural: widgets, singular: widget}
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
"""


@pytest.mark.parametrize(("scope", "refused"), [("Cluster", False), ("Namespaced", True)])
def test_a_custom_kind_is_placed_in_the_units_namespace_only_when_the_checkouts_crd_says_it_is_namespaced(
    repo: Upstream, scope: str, refused: bool
) -> None:
    """As the loop's discovery knows a CRD once it is applied: a policy for namespace team judges a Widget that
    names no namespace only where the Widget will live in team."""
    repo.write("root/crd.yaml", CRD.replace("SCOPE", scope))
    repo.write("policies/widgets.yaml", OWNER_LABEL.replace("owner-label", "widget-tier").replace("[owner]", "[tier]")
               .replace("match: {kinds: [ConfigMap]}", "match: {kinds: [Widget], namespaces: [team]}"))  # fmt: skip
    repo.write("loose/widget.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
    result = check()
    assert ("REFUSED (PolicyDenied)" in verdict(result.output, "Unit/team/loose")) is refused, result.output
    assert result.exit_code == int(refused)
