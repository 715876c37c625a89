"""A retirement keeps what a Unit the root's applied commit declares claims (``plan/retire.py``: ``unclaimed``,
``claimed_by_render``), pure. Who: a commit that renames or moves a Unit while its new name is served later or
by another replica (its pass has not relabelled the objects yet), and a root path where two Units declare one
object (the retiring one applied it last, so it carries the retiring Unit's label). The loop's side, across
replicas: ``tests/integration/redteam_today/test_a_unit_renamed_across_replicas_keeps_its_objects.py``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.model import UNIT_LABEL, Manifest, ObjectKey
from gitopsguard.plan.retire import Served, claimed_by_render, plan_retirement, unclaimed
from gitopsguard.units import UnitRef, UnitSpec

OLD, NEW, OTHER = UnitRef("team", "old"), UnitRef("team", "new"), UnitRef("other", "theirs")


def retiring() -> Served:
    return Served(OLD, "teams/a", None, True, False, False, "clusters/prod/units.yaml:1")


def labelled(name: str, namespace: str = "team", unit: str = "team.old") -> tuple[ObjectKey, dict[str, Any]]:
    return ObjectKey("", "ConfigMap", namespace, name), {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": {UNIT_LABEL: unit}},
    }  # fmt: skip


def spec(ref: UnitRef, *, target: str | None = None) -> UnitSpec:
    return UnitSpec(ref, "clusters/prod/units.yaml:9", "teams/a", timedelta(minutes=5), target_namespace=target)


def manifest(kind: str, name: str, namespace: str = "", api_version: str = "v1") -> Manifest:
    metadata = {"name": name} | ({"namespace": namespace} if namespace else {})
    body = {"apiVersion": api_version, "kind": kind, "metadata": metadata}
    return Manifest(ObjectKey.of(body), body, "teams/a/x.yaml:1")


def test_an_object_a_declared_unit_claims_is_kept_though_it_still_carries_the_retiring_units_label() -> None:
    web, db = labelled("web"), labelled("db")
    plan = plan_retirement(retiring(), frozenset({web[0], db[0]}), dict([web, db]))
    assert set(plan.delete) == {web[0], db[0]}, "both still carry the old name's label"
    kept = unclaimed(plan, {web[0]: NEW})
    assert kept.delete == (db[0],) and kept.claimed == ((web[0], NEW),) and kept.keep == () and kept.owned == 2


def test_another_teams_object_the_retiring_unit_applied_last_is_kept_when_their_unit_claims_it() -> None:
    theirs = labelled("shared", namespace="other")  # both folders declare it; the retiring Unit wrote it last
    plan = unclaimed(plan_retirement(retiring(), frozenset({theirs[0]}), dict([theirs])), {theirs[0]: OTHER})
    assert plan.delete == () and plan.claimed == ((theirs[0], OTHER),)


def test_a_documents_object_without_a_namespace_is_claimed_in_the_units_default_namespace_and_cluster_wide() -> None:
    claimed = claimed_by_render(spec(NEW, target="shop"), [manifest("ConfigMap", "web"),
                                                           manifest("ConfigMap", "db", namespace="data")])  # fmt: skip
    assert claimed == {
        ObjectKey("", "ConfigMap", "shop", "web"): NEW,
        ObjectKey("", "ConfigMap", "", "web"): NEW,
        ObjectKey("", "ConfigMap", "data", "db"): NEW,
        ObjectKey("", "ConfigMap", "", "db"): NEW,
    }
    without_target = claimed_by_render(spec(NEW), [manifest("Role", "r", api_version="rbac.authorization.k8s.io/v1")])
    assert ObjectKey("rbac.authorization.k8s.io", "Role", "team", "r") in without_target


def test_a_cluster_scoped_object_a_document_names_with_a_namespace_is_claimed_all_the_same() -> None:
    # the server drops a namespace written on a cluster-scoped kind: the inventory keeps it without one
    claimed = claimed_by_render(spec(NEW), [manifest("Namespace", "shop", namespace="team")])
    assert claimed[ObjectKey("", "Namespace", "", "shop")] == NEW


names = st.sampled_from(["a", "b", "c", "d", "e"])
keys = st.builds(lambda n, ns: ObjectKey("", "ConfigMap", ns, n), names, st.sampled_from(["team", "other"]))
owners = st.sampled_from([OLD, NEW, OTHER])


@given(st.sets(keys, max_size=6), st.dictionaries(keys, owners, max_size=6))
@example({ObjectKey("", "ConfigMap", "team", "a")}, {ObjectKey("", "ConfigMap", "team", "a"): OLD})
def test_a_retirement_never_deletes_what_another_unit_claims_and_keeps_nothing_else_back(
    found: set[ObjectKey], claimed: dict[ObjectKey, UnitRef]
) -> None:
    live = dict(labelled(k.name, k.namespace) for k in found)
    plan = plan_retirement(retiring(), frozenset(found), live)
    kept = unclaimed(plan, claimed)
    assert not [k for k in kept.delete if claimed.get(k, OLD) != OLD]
    assert set(kept.delete) | {k for k, _ in kept.claimed} == set(plan.delete) and kept.keep == plan.keep
    assert set(kept.delete) == {k for k in plan.delete if claimed.get(k, OLD) == OLD}
