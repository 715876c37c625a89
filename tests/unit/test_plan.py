"""plan (pure): preparing bodies, the drift test, who drifted an object, and the prune plan's brake."""

from __future__ import annotations

from typing import Any

from gitopsguard.model import UNIT_LABEL, Manifest, ObjectKey
from gitopsguard.plan.diff import has_changed, still_as_applied, who_changed
from gitopsguard.plan.prepare import in_apply_order, prepare
from gitopsguard.plan.prune import BrakePolicy, plan_prune


def key(kind: str, name: str, namespace: str = "shop", group: str = "") -> ObjectKey:
    return ObjectKey(group, kind, namespace, name)


def owned(k: ObjectKey, unit: str = "dev", **annotations: str) -> dict[str, object]:
    return {"metadata": {"name": k.name, "labels": {UNIT_LABEL: unit}, "annotations": annotations}}


def test_prepare_labels_defaults_namespace_and_port_protocol_and_orders_stages() -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}}  # fmt: skip
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "namespace": "x"}}
    manifests = tuple(Manifest(ObjectKey.of(b), b, "f.yaml:1") for b in (service, namespace))
    svc, ns = prepare(manifests, unit="dev", default_namespace="shop", namespaced=lambda m: m.key.kind != "Namespace")
    assert svc.body["metadata"]["namespace"] == "shop" and svc.key.namespace == "shop"
    assert svc.body["metadata"]["labels"][UNIT_LABEL] == "dev"
    assert [p["protocol"] for p in svc.body["spec"]["ports"]] == ["TCP", "UDP"]
    assert "namespace" not in ns.body["metadata"]
    assert (ns.stage, svc.stage) == (0, 2)
    assert "labels" not in service["metadata"], "the rendered manifest itself is not modified"


def test_prepare_reuses_a_manifests_prepared_form_only_while_unit_and_namespace_rules_are_the_same() -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web"}, "data": {"k": "v"}}
    manifests = (Manifest(ObjectKey.of(body), body, "f.yaml:1"),)
    first = prepare(manifests, unit="dev", default_namespace="shop", namespaced=lambda _: True)[0]
    again = prepare(manifests, unit="dev", default_namespace="shop", namespaced=lambda _: True)[0]
    assert again is first, "the same rendered manifest is not copied and hashed again"
    moved = prepare(manifests, unit="dev", default_namespace="cart", namespaced=lambda _: True)[0]
    other_unit = prepare(manifests, unit="prod", default_namespace="shop", namespaced=lambda _: True)[0]
    cluster_wide = prepare(manifests, unit="dev", default_namespace="shop", namespaced=lambda _: False)[0]
    assert moved.key.namespace == "cart" and moved.digest != first.digest
    assert other_unit.body["metadata"]["labels"][UNIT_LABEL] == "prod"
    assert cluster_wide.key.namespace == "" and "namespace" not in cluster_wide.body["metadata"]
    same_text = (Manifest(ObjectKey.of(body), {**body}, "f.yaml:1"),)  # another render of the same file
    assert prepare(same_text, unit="dev", default_namespace="shop", namespaced=lambda _: True)[0] is not first


def test_within_a_stage_what_workloads_refer_to_is_applied_first_keeping_git_order_per_kind() -> None:
    kinds = ["Deployment", "Widget", "Service", "ConfigMap", "RoleBinding", "ConfigMap", "ServiceAccount"]
    bodies = [{"apiVersion": "v1", "kind": k, "metadata": {"name": f"{k}-{i}", "namespace": "shop"}}
              for i, k in enumerate(kinds)]  # fmt: skip
    desired = prepare(tuple(Manifest(ObjectKey.of(b), b, "f.yaml") for b in bodies), unit="dev",
                      default_namespace="shop", namespaced=lambda _: True)  # fmt: skip
    ordered = [d.key.name for d in in_apply_order(desired)]
    assert ordered == ["ServiceAccount-6", "ConfigMap-3", "ConfigMap-5", "RoleBinding-4", "Service-2",
                       "Deployment-0", "Widget-1"]  # fmt: skip


def test_server_managed_metadata_is_not_drift_but_data_is() -> None:
    live = {"metadata": {"name": "a", "resourceVersion": "7", "managedFields": [{}]}, "data": {"k": "v"}}
    assert not has_changed({"metadata": {"name": "a", "resourceVersion": "8"}, "data": {"k": "v"}}, live)
    assert has_changed({"metadata": {"name": "a"}, "data": {"k": "other"}}, live)
    assert has_changed({"metadata": {"name": "a"}}, None)


def test_who_changed_names_the_latest_writer_of_desired_state_that_is_not_us() -> None:
    spec: dict[str, Any] = {"f:spec": {"f:replicas": {}}}
    status: dict[str, Any] = {"f:status": {}, "f:metadata": {"f:annotations": {}}}
    live = {"metadata": {"managedFields": [
        {"manager": "gitopsguard", "operation": "Apply", "time": "2026-11-24T00:08:00Z", "fieldsV1": spec},
        {"manager": "kubectl-edit", "operation": "Update", "time": "2026-11-24T00:05:00Z", "fieldsV1": spec},
        {"manager": "kubectl-patch", "operation": "Update", "time": "2026-11-24T00:09:00Z", "fieldsV1": spec},
        {"manager": "kube-controller-manager", "operation": "Update", "time": "2026-11-24T00:11:00Z",
         "fieldsV1": status},
    ]}}  # fmt: skip
    assert who_changed(live) == "kubectl-patch (Update) at 2026-11-24T00:09:00Z"


def test_who_changed_never_blames_a_writer_our_later_apply_overwrote() -> None:
    """An Apply under our name after kubectl-patch's write overwrote it: the drift came from a write that
    left no manager of its own (the scale subresource), or from someone applying under our name."""
    spec: dict[str, Any] = {"f:spec": {"f:replicas": {}}}
    live = {"metadata": {"managedFields": [
        {"manager": "gitopsguard", "operation": "Apply", "time": "2026-11-24T00:10:00Z", "fieldsV1": spec},
        {"manager": "kubectl-patch", "operation": "Update", "time": "2026-11-24T00:09:00Z", "fieldsV1": spec},
    ]}}  # fmt: skip
    assert "left no field manager of its own" in who_changed(live)


def test_an_update_under_our_field_manager_name_is_someone_elses_write() -> None:
    """We only ever apply: a tenant's ``kubectl patch --field-manager gitopsguard`` is named as what it is,
    and it is a write since our apply (so the object is not taken as still as applied)."""
    spec: dict[str, Any] = {"f:spec": {"f:replicas": {}}}
    forged = {"manager": "gitopsguard", "operation": "Update", "time": "2026-11-24T00:10:00Z", "fieldsV1": spec}
    live = applied_live()
    live["metadata"]["managedFields"].append(forged)
    assert who_changed(live) == "gitopsguard (Update) at 2026-11-24T00:10:00Z"
    assert not still_as_applied(live, DESIRED)


def test_who_changed_does_not_blame_a_status_writer_when_no_manager_was_recorded() -> None:
    status_only: dict[str, Any] = {"f:status": {}, "f:metadata": {"f:annotations": {}}}
    live = {"metadata": {"managedFields": [{"manager": "kube-controller-manager", "fieldsV1": status_only}]}}
    assert "left no field manager" in who_changed(live)
    assert "left no field manager" in who_changed({"metadata": {}})


CONTAINERS = [{"name": "c", "image": "i:1"}]
DESIRED = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
           "spec": {"replicas": 2, "paused": False, "template": {"spec": {"containers": CONTAINERS}}}}  # fmt: skip


def applied_live(**changes: object) -> dict[str, Any]:
    """DESIRED as the server stores it: defaults added, status and bookkeeping written by a controller."""
    live: dict[str, Any] = {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}, "resourceVersion": "9",
                         "annotations": {"deployment.kubernetes.io/revision": "1"}, "managedFields": [
                {"manager": "gitopsguard", "operation": "Apply", "time": "2026-11-24T00:10:00Z",
                 "fieldsV1": {"f:spec": {"f:replicas": {}}}},
                {"manager": "kube-controller-manager", "operation": "Update", "time": "2026-11-24T00:10:05Z",
                 "fieldsV1": {"f:status": {}, "f:metadata": {"f:annotations": {}}}}]},
            "spec": {"replicas": 2, "paused": False, "strategy": {"type": "RollingUpdate"}, "template": {"spec": {
                "containers": [{"name": "c", "image": "i:1", "imagePullPolicy": "IfNotPresent"}]}}},
            "status": {"replicas": 2, "readyReplicas": 1}}  # fmt: skip
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        target: Any = live
        for part in parents:
            target = target[part] if not part.isdigit() else target[int(part)]
        target[leaf] = value
    return live


def test_status_updates_and_server_defaults_leave_an_object_as_applied() -> None:
    assert still_as_applied(applied_live(), DESIRED)
    assert still_as_applied(applied_live(status={"replicas": 5}), DESIRED)


def test_quantities_in_resource_lists_compare_by_value_and_nowhere_else() -> None:
    desired = {"spec": {"resources": {"limits": {"cpu": "0.5", "memory": "1Gi"}}, "env": [{"value": "1k"}]}}
    live = applied_live(
        spec={"resources": {"limits": {"cpu": "500m", "memory": "1073741824"}}, "env": [{"value": "1k"}]}
    )
    assert still_as_applied(live, desired)
    live["spec"]["resources"]["limits"]["cpu"] = "600m"
    assert not still_as_applied(live, desired)
    assert not still_as_applied(applied_live(spec={"resources": {"limits": {"cpu": "0.5", "memory": "1Gi"}},
                                                  "env": [{"value": "1000"}]}), desired)  # fmt: skip


def test_a_changed_value_an_extra_list_item_or_a_lost_field_is_not_as_applied() -> None:
    assert not still_as_applied(applied_live(spec__replicas=3), DESIRED)
    assert not still_as_applied(applied_live(spec__paused=0), DESIRED), "false is not 0"
    containers = [{"name": "c", "image": "i:1"}, {"name": "sidecar", "image": "s"}]
    assert not still_as_applied(applied_live(spec__template__spec__containers=containers), DESIRED)
    assert not still_as_applied(applied_live(metadata__labels={}), DESIRED)


def test_another_writer_of_desired_state_after_our_apply_is_for_the_dry_run_to_judge() -> None:
    live = applied_live()
    live["metadata"]["managedFields"].append(
        {"manager": "kubectl-edit", "operation": "Update", "time": "2026-11-24T00:10:00Z",
         "fieldsV1": {"f:spec": {"f:template": {}}}})  # fmt: skip
    assert not still_as_applied(live, DESIRED)
    assert not still_as_applied(applied_live(metadata__managedFields=[]), DESIRED), "nothing of ours is left"


def test_only_objects_that_left_git_and_carry_our_label_are_deleted() -> None:
    a, b, c, d, e = (key("ConfigMap", n) for n in "abcde")
    live = {b: owned(b), c: owned(c, unit="other"), d: owned(d, **{"gitopsguard.io/prune": "disabled"})}
    plan = plan_prune(inventory=frozenset({a, b, c, d, e}), desired=frozenset({a}), live=live, unit="dev",
                      policy=BrakePolicy(max_fraction=1.0))  # fmt: skip
    assert plan.delete == (b,)
    assert {k for k, _ in plan.keep} == {c, d}
    assert plan.brake is None  # e is already gone; nothing else to say


def test_brake_engages_above_the_fraction_and_on_guarded_kinds_unless_released() -> None:
    cms = [key("ConfigMap", f"cm{i}") for i in range(8)]
    live = {k: owned(k) for k in cms}
    over = plan_prune(inventory=frozenset(cms), desired=frozenset(cms[:5]), live=live, unit="dev", policy=BrakePolicy())
    assert over.brake is not None and "3 of 8" in over.brake
    under = plan_prune(
        inventory=frozenset(cms), desired=frozenset(cms[:6]), live=live, unit="dev", policy=BrakePolicy()
    )
    assert under.brake is None and len(under.delete) == 2
    pvc = key("PersistentVolumeClaim", "data")
    guarded = plan_prune(inventory=frozenset([*cms, pvc]), desired=frozenset(cms), live={pvc: owned(pvc)}, unit="dev",
                         policy=BrakePolicy())  # fmt: skip
    assert guarded.brake is not None and "PersistentVolumeClaim/shop/data" in guarded.brake
    released = plan_prune(inventory=frozenset(cms), desired=frozenset(cms[:1]), live=live, unit="dev",
                          policy=BrakePolicy(released=True))  # fmt: skip
    assert released.brake is None and len(released.delete) == 7


def test_empty_render_never_prunes_even_when_released() -> None:
    cms = [key("ConfigMap", f"cm{i}") for i in range(3)]
    plan = plan_prune(inventory=frozenset(cms), desired=frozenset(), live={k: owned(k) for k in cms}, unit="dev",
                      policy=BrakePolicy(released=True))  # fmt: skip
    assert plan.brake is not None and "empty render" in plan.brake


def test_secret_values_never_appear_in_a_diff_and_changed_keys_are_marked() -> None:
    from gitopsguard.plan.show import unified

    live: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db"},
        "data": {"password": "aHVudGVyMg==", "user": "YWRtaW4="},
    }
    desired = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db"},
        "data": {"password": "czNjcjN0", "user": "YWRtaW4="},
        "stringData": {"token": "plain-secret"},
    }
    live["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": '{"data":{"password":"aHVudGVyMg=="}}'
    }
    text = unified("Secret/shop/db", "apps/db.yaml:1", live, desired)
    for value in ("aHVudGVyMg==", "czNjcjN0", "YWRtaW4=", "plain-secret"):
        assert value not in text
    assert "-  password: '*** (old value)'" in text and "+  password: '*** (new value)'" in text
    assert "user: '***'" in text and "+  token: '*** (new value)'" in text


def test_diff_of_an_ordinary_object_shows_the_changed_field() -> None:
    from gitopsguard.plan.show import unified

    live = {"kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "9"}, "data": {"k": "old"}}
    text = unified(
        "ConfigMap/shop/a", "a.yaml:1", live, {"kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "new"}}
    )
    assert "-  k: old\n" in text and "+  k: new\n" in text and "resourceVersion" not in text


def test_unmanaged_workloads_get_a_deadline_from_first_sight_and_owned_or_labelled_ones_are_ignored() -> None:
    from datetime import UTC, datetime, timedelta

    from gitopsguard.plan.unmanaged import Policy, judge, parse_grace

    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    stray, owned, ours = (key("Pod", n) for n in ("stray", "owned", "ours"))
    live: dict[ObjectKey, dict[str, Any]] = {
        stray: {"metadata": {"name": "stray"}},
        owned: {"metadata": {"name": "owned", "ownerReferences": [{"kind": "ReplicaSet"}]}},
        ours: {"metadata": {"name": "ours", "labels": {UNIT_LABEL: "dev"}}},
    }
    policy = Policy("shop", delete=True, grace=timedelta(minutes=30))
    (fresh,) = judge(live, policy, {}, now)
    assert fresh.key == stray and not fresh.delete and fresh.deadline == now + timedelta(minutes=30)
    (due,) = judge(live, policy, {stray: now - timedelta(minutes=31)}, now)
    assert due.delete
    (reported,) = judge(live, Policy("shop", delete=False, grace=timedelta(0)), {}, now)
    assert not reported.delete and reported.deadline is None
    assert parse_grace("45m") == timedelta(minutes=45) and parse_grace("soon") == timedelta(hours=1)
