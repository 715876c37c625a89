"""``check --root`` and the Units loop agree on the real API server: what ``check`` refuses offline, the loop
refuses with the same status reason and message, and what it passes, the loop applies (issue 19).

Two ways: the running loop (``fleet.Fleet``, as ``run --root --policies-path policies``) serving a tree that
holds one of each refusal, each Unit's Ready condition read back; and, for a few trees, the loop's gate
(``heads.judge`` with a real ``Applier``: discovery decides which kinds are namespaced, the live Namespaces
count) called beside ``check_units`` on every Unit. The second is what ``check`` answers offline
(``commands/check_offline.py``); were its answers wrong, a placement or a namespace policy would differ here."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.rest import RawApi
from gitopsguard.commands.check_units import WORKING_TREE, UnitsCheck, Verdict, check_units
from gitopsguard.fleet import unit_of
from gitopsguard.heads import judge
from gitopsguard.policy import DenyLevel
from gitopsguard.reconcile import Unit, renderer
from gitopsguard.source import Revision
from gitopsguard.units.root import Root, minted_units, units_of_root
from tests.gitrepo import Upstream
from tests.integration.test_units_crd import install_unit_crd
from tests.integration.test_units_own_policies import OWNER_LABEL, VERSION_KEY, configmap, start
from tests.waiting import eventually

pytestmark = pytest.mark.integration

API = "apiVersion: gitopsguard.io/v1alpha1\n"
NOW = datetime(2026, 12, 5, tzinfo=UTC)
EXCEPTION = (API + "kind: PolicyException\nmetadata: {name: mine}\nspec:\n  policies: [owner-label]\n"
             "  match: {names: [loosening]}\n  reason: we know\n  expires: 2099-01-01T00:00:00Z\n")  # fmt: skip
# name -> spec: one Unit of each kind the loop refuses, and one it applies
SPECS = {
    "good": "{path: good}",
    "denied": "{path: denied, policiesPath: denied-policies}",
    "loosening": "{path: loosening, policiesPath: loosening-policies}",
    "minting": "{path: minting}",
    "misplaced": "{path: misplaced, policiesPath: good/policies}",
    "cycle-a": "{path: cycle-a, dependsOn: [{name: cycle-b}]}",
    "cycle-b": "{path: cycle-b, dependsOn: [{name: cycle-a}]}",
    "behind": "{path: behind, dependsOn: [{name: ghost}]}",
}


def unit(name: str, namespace: str, spec: str) -> str:
    return f"{API}kind: Unit\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec: {spec}\n---\n"


def tree(upstream: Upstream, namespace: str) -> None:
    upstream.write("root/units.yaml", "".join(unit(n, namespace, s) for n, s in SPECS.items()))
    upstream.write("policies/owner.yaml", OWNER_LABEL)
    upstream.write("denied-policies/version.yaml", VERSION_KEY)
    upstream.write("loosening-policies/exception.yaml", EXCEPTION)
    for name in SPECS:
        upstream.write(f"{name}/cm.yaml", configmap(name, namespace, "1", version=name != "denied"))
    upstream.write("minting/unit.yaml", unit("mine", namespace, "{path: elsewhere}"))


def checked(checkout: Path, policies: str | None = "policies") -> UnitsCheck:
    return check_units(checkout, "root", policies_path=policies, deny_level=DenyLevel.LOW, now=NOW)


def test_the_running_loop_refuses_each_unit_check_refuses_with_the_same_reason_and_message(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    install_unit_crd(RawApi(admin_api))
    upstream = Upstream(tmp_path / "git")
    tree(upstream, namespace)
    sha = upstream.commit()
    verdicts = {v.subject: v for v in checked(upstream.work).units}
    assert {s for s, v in verdicts.items() if not v.refused} == {f"Unit/{namespace}/good"}, verdicts
    running, stop = start(admin_api, namespace, upstream, tmp_path / "gg")
    try:
        eventually(lambda: all(running.ready(n).get("reason") not in (None, "Progressing") for n in SPECS), 90,
                   every=0.5)  # fmt: skip
        for name in SPECS:
            ready, verdict = running.ready(name), verdicts[f"Unit/{namespace}/{name}"]
            assert (ready["status"] == "True") == (not verdict.refused), (name, ready, verdict)
            if verdict.refused:
                assert ready["reason"] == verdict.reason, (name, ready, verdict)
                said = verdict.message.replace(f"revision {WORKING_TREE}", f"revision {sha[:12]}")
                whole = running.said(name)  # the conditions hold its first line (`kubectl get units`)
                assert whole.rstrip(".") in said or said in whole, (name, whole, said)
    finally:
        stop()


def loop_gate(checkout: Path, applier: Applier, policies: str | None) -> dict[str, tuple[str, str]]:
    """Each Unit's refusal by the loop's gate as the loop's pass calls it (``Fleet._judged``): "" when it passes."""
    root = Unit("root", "root", "default", policies_path=policies)
    revision = Revision(WORKING_TREE, checkout, "", "")
    render = renderer(None)
    found = {}
    for spec in units_of_root(Root("root", "root"), render(checkout, "root", WORKING_TREE)).units:
        head = judge(unit_of(spec, root), revision, applier, render, NOW)
        minted = minted_units(spec, head.manifests) if head.refusal is None else ()
        found[str(spec.ref)] = (str(head.refusal or ""), minted[0] if minted else "")
    return found


def check_gate(result: UnitsCheck) -> dict[str, tuple[str, str]]:
    def refusal(verdict: Verdict) -> tuple[str, str]:
        minted = "a Unit may be declared in the root path only" in verdict.message
        return ("", verdict.message) if minted else (verdict.message, "")

    return {v.subject: refusal(v) for v in result.units}


NAMESPACE_POLICY = OWNER_LABEL.replace("owner-label", "here").replace("[owner]", "[tier]")


@pytest.mark.parametrize("files", [
    {  # a ConfigMap without a namespace lands in the Unit's target namespace, where a policy wants a tier label
        "policies/here.yaml": NAMESPACE_POLICY.replace("[ConfigMap]}", "[ConfigMap], namespaces: [NS]}"),
        "a/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: {owner: x}}\n",
    },
    {  # a ClusterRole has no namespace: a policy for the target namespace does not judge it
        "policies/here.yaml": NAMESPACE_POLICY.replace("[ConfigMap]}", "[ClusterRole], namespaces: [NS]}"),
        "a/role.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: a}\nrules: []\n",
    },
    {  # a Unit object without a namespace, of a kind the cluster serves namespaced: minted in the team folder
        "a/unit.yaml": API + "kind: Unit\nmetadata: {name: mine}\nspec: {path: b}\n",
    },
    {  # the team's own policies hold a mutation: refused naming its file and line
        "a/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: {owner: x}}\n",
        "a-policies/tag.yaml": API + "kind: Policy\nmetadata: {name: tag}\nspec:\n  mutate: {addLabels: {x: y}}\n",
    },
], ids=["namespaced-default", "cluster-scoped", "minted", "loosening"])  # fmt: skip
def test_check_and_the_loops_gate_give_each_unit_the_same_verdict(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path, files: dict[str, str]
) -> None:
    install_unit_crd(RawApi(admin_api))
    upstream = Upstream(tmp_path / "git")
    a = unit("a", namespace, f"{{path: a, targetNamespace: {namespace}, policiesPath: a-policies}}")
    upstream.write("root/units.yaml", a + unit("b", namespace, "{path: b}"))
    upstream.write("policies/owner.yaml", OWNER_LABEL)
    upstream.write("b/cm.yaml", configmap("b", namespace, "1", owner=False))
    for path, text in files.items():
        upstream.write(path, text.replace("[NS]", f"[{namespace}]"))
    upstream.commit()
    checkout = upstream.work
    by_check = check_gate(checked(checkout))
    by_loop = loop_gate(checkout, Applier(admin_api), "policies")
    assert by_check == by_loop
    assert by_check[f"Unit/{namespace}/b"][0], "b's ConfigMap has no owner label: both refuse it"
