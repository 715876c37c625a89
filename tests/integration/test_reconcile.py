"""reconcile against the real API server: apply, no-op, prune, the brake, and every bad input."""

from __future__ import annotations

import time
from collections.abc import Callable, Container, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitopsguard.audit import AuditLog
from gitopsguard.cli import main
from gitopsguard.cluster.apply import Applier, Prepared
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.errors import ApplyError
from gitopsguard.model import Action, KubeObject, Manifest, ObjectKey
from gitopsguard.plan.prepare import Desired, prepare
from gitopsguard.reconcile import ReconcileResult, Unit, reconcile
from gitopsguard.source import GitSource, SourceSpec
from tests.gitrepo import Upstream, git
from tests.integration.conftest import LiveCluster, bind_user
from tests.kube import data_of, labels_of, meta

pytestmark = pytest.mark.integration


@dataclass
class Harness:
    upstream: Upstream
    namespace: str
    api: client.ApiClient
    workdir: Path

    def run(self, *, allow_rewind: bool = False) -> ReconcileResult:
        source = GitSource(SourceSpec(self.upstream.url), self.workdir)
        unit = Unit(self.namespace, "apps", default_namespace=self.namespace)
        return reconcile(unit, source, Applier(self.api), InventoryStore(self.api), allow_rewind=allow_rewind)

    def configmap(self, name: str, namespace: str | None = None) -> client.V1ConfigMap | None:
        try:
            return client.CoreV1Api(self.api).read_namespaced_config_map(name, namespace or self.namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def configmaps(self, *names: str) -> None:
        for name in names:
            self.upstream.write(f"apps/{name}.yaml", CONFIGMAP.format(name=name, value="1"))


CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
data:
  value: "{value}"
"""


@pytest.fixture
def h(admin_api: client.ApiClient, namespace: str, tmp_path: Path) -> Iterator[Harness]:
    yield Harness(Upstream(tmp_path / "git"), namespace, admin_api, tmp_path / "gg")


def actions(result: ReconcileResult) -> dict[str, str]:
    return {str(c.key): c.action.value for c in result.changes}


def test_first_pass_creates_and_second_pass_writes_nothing(h: Harness) -> None:
    h.configmaps("a", "b")
    h.upstream.commit()
    first = h.run()
    assert first.error is None
    assert set(actions(first).values()) == {"created"}
    version = meta(h.configmap("a")).resource_version
    second = h.run()
    assert set(actions(second).values()) == {"unchanged"}
    assert meta(h.configmap("a")).resource_version == version
    assert labels_of(h.configmap("a"))["gitopsguard.io/unit"] == h.namespace


def test_only_the_changed_object_is_applied(h: Harness) -> None:
    h.configmaps("a", "b", "c")
    h.upstream.commit()
    h.run()
    h.upstream.write("apps/b.yaml", CONFIGMAP.format(name="b", value="2"))
    h.upstream.commit()
    result = h.run()
    assert actions(result) == {f"ConfigMap/{h.namespace}/a": "unchanged", f"ConfigMap/{h.namespace}/b": "configured",
                               f"ConfigMap/{h.namespace}/c": "unchanged"}  # fmt: skip
    assert data_of(h.configmap("b")) == {"value": "2"}


def test_object_removed_from_git_is_pruned(h: Harness) -> None:
    h.configmaps("a", "b", "c", "d", "e")
    h.upstream.commit()
    h.run()
    h.upstream.remove("apps/e.yaml")
    h.upstream.commit()
    assert actions(h.run())[f"ConfigMap/{h.namespace}/e"] == "deleted"
    assert h.configmap("e") is None


def test_prune_skips_objects_marked_prune_disabled(h: Harness) -> None:
    h.configmaps("a", "b", "c", "d")
    h.upstream.write("apps/keep.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: keep\n"
                     "  annotations: {gitopsguard.io/prune: disabled}\n")  # fmt: skip
    h.upstream.commit()
    h.run()
    h.upstream.remove("apps/keep.yaml")
    h.upstream.commit()
    result = h.run()
    assert actions(result)[f"ConfigMap/{h.namespace}/keep"] == "skipped"
    assert h.configmap("keep") is not None


def test_prune_spares_an_object_that_no_longer_carries_our_label(h: Harness) -> None:
    h.configmaps("a", "b", "c", "d", "mine")
    h.upstream.commit()
    h.run()
    patch = {"metadata": {"labels": {"gitopsguard.io/unit": None}}}
    client.CoreV1Api(h.api).patch_namespaced_config_map("mine", h.namespace, patch)
    h.upstream.remove("apps/mine.yaml")
    h.upstream.commit()
    h.run()
    assert h.configmap("mine") is not None


def test_mass_prune_brake_holds_until_the_commit_releases_it(h: Harness) -> None:
    h.configmaps("a", "b", "c", "d")
    h.upstream.commit()
    h.run()
    for name in ("b", "c", "d"):
        h.upstream.remove(f"apps/{name}.yaml")
    h.upstream.commit("remove three")
    held = h.run()
    assert held.brake is not None and "3 of 4" in held.brake
    assert all(h.configmap(n) is not None for n in ("b", "c", "d"))
    h.upstream.commit("really remove them [gitopsguard: allow-mass-prune]")
    released = h.run()
    assert released.brake is None
    assert all(h.configmap(n) is None for n in ("b", "c", "d"))


def test_empty_render_never_prunes_even_when_released(h: Harness) -> None:
    h.configmaps("a", "b")
    h.upstream.commit()
    h.run()
    for name in ("a", "b"):
        h.upstream.remove(f"apps/{name}.yaml")
    h.upstream.write("apps/README.md", "nothing here")
    h.upstream.commit("oops [gitopsguard: allow-mass-prune]")
    result = h.run()
    assert result.brake is not None and "empty render" in result.brake
    assert h.configmap("a") is not None and h.configmap("b") is not None


def test_broken_yaml_applies_nothing_and_names_the_file(h: Harness) -> None:
    h.configmaps("a")
    good = h.upstream.commit()
    h.run()
    h.configmaps("new")
    h.upstream.write("apps/broken.yaml", "kind: ConfigMap\nmetadata: [\n")
    h.upstream.commit()
    result = h.run()
    assert result.error is not None and result.error.startswith("apps/broken.yaml:")
    assert h.configmap("new") is None
    assert InventoryStore(h.api).load(h.namespace).last_applied == good


def test_object_the_server_rejects_applies_nothing_of_the_revision(h: Harness) -> None:
    h.configmaps("a")
    h.upstream.commit()
    h.run()
    fresh = f"{h.namespace}-extra"
    h.upstream.write("apps/ns.yaml", f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {fresh}\n")
    h.upstream.write("apps/new.yaml", CONFIGMAP.format(name="new", value="1"))
    h.upstream.write(
        "apps/bad.yaml",
        f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: bad, namespace: {fresh}}}
        spec:
          replicas: -3
          selector: {{matchLabels: {{app: bad}}}}
          template:
            metadata: {{labels: {{app: bad}}}}
            spec: {{containers: [{{name: c, image: nginx}}]}}
        """,
    )
    h.upstream.commit()
    result = h.run()
    assert result.error is not None
    assert f"Deployment/{fresh}/bad (apps/bad.yaml:1): dry run refused" in result.error
    assert h.configmap("new") is None
    namespace = client.CoreV1Api(h.api).read_namespace(fresh) if _exists(h.api, fresh) else None
    assert namespace is None or (namespace.status is not None and namespace.status.phase == "Terminating"), (
        "the new namespace is rolled back"
    )


def _exists(api: client.ApiClient, namespace: str) -> bool:
    try:
        client.CoreV1Api(api).read_namespace(namespace)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def test_unknown_kind_names_the_file_and_applies_nothing(h: Harness) -> None:
    h.configmaps("a")
    h.upstream.write("apps/widget.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
    h.upstream.commit()
    result = h.run()
    assert result.error is not None
    assert "apps/widget.yaml:1: the server does not serve kind Widget in example.com/v1" in result.error
    assert h.configmap("a") is None


def test_crd_and_its_instance_in_one_revision_are_applied_in_order(h: Harness) -> None:
    group = f"{h.namespace}.example.com"
    h.upstream.write(
        "apps/crd.yaml",
        f"""\
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata: {{name: gadgets.{group}}}
        spec:
          group: {group}
          scope: Namespaced
          names: {{plural: gadgets, singular: gadget, kind: Gadget}}
          versions:
            - name: v1
              served: true
              storage: true
              schema: {{openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}}}
        """,
    )
    h.upstream.write(
        "apps/gadget.yaml", f"apiVersion: {group}/v1\nkind: Gadget\nmetadata: {{name: g1}}\nspec: {{size: 3}}\n"
    )
    h.upstream.commit()
    result = h.run()
    assert result.error is None, result.error
    assert actions(result)[f"Gadget/{h.namespace}/g1"] == "created"
    crds = client.ApiextensionsV1Api(h.api)
    try:
        assert h.run().error is None
    finally:
        crds.delete_custom_resource_definition(f"gadgets.{group}")


def test_two_files_defining_the_same_object_apply_nothing(h: Harness) -> None:
    h.upstream.write("apps/one.yaml", CONFIGMAP.format(name="dup", value="1"))
    h.upstream.write("apps/two.yaml", CONFIGMAP.format(name="dup", value="2"))
    h.upstream.commit()
    result = h.run()
    assert result.error is not None and "is already defined at apps/one.yaml:1" in result.error
    assert h.configmap("dup") is None


def test_force_push_is_refused_and_the_cluster_is_left_as_it_is(h: Harness) -> None:
    h.configmaps("a")
    h.upstream.commit()
    h.run()
    h.configmaps("b")
    h.upstream.commit()
    h.run()
    git(h.upstream.work, "reset", "-q", "--hard", "HEAD~1")
    h.configmaps("c")
    h.upstream.commit("rewritten")
    result = h.run()
    assert result.error is not None and "force-push" in result.error
    assert h.configmap("b") is not None and h.configmap("c") is None
    assert h.run(allow_rewind=True).error is None
    assert h.configmap("c") is not None


def test_object_moved_to_another_unit_is_adopted_not_deleted(h: Harness) -> None:
    h.configmaps("a", "b", "c", "d", "moving")
    h.upstream.commit()
    h.run()
    uid = meta(h.configmap("moving")).uid
    other = Upstream(h.workdir.parent / "other-git")
    other.write("apps/moving.yaml", CONFIGMAP.format(name="moving", value="1"))
    other.commit()
    other_unit = Unit(f"{h.namespace}-other", "apps", default_namespace=h.namespace)
    adopted = reconcile(other_unit, GitSource(SourceSpec(other.url), h.workdir.parent / "other-gg"), Applier(h.api),
                        InventoryStore(h.api))  # fmt: skip
    assert adopted.error is None
    h.upstream.remove("apps/moving.yaml")
    h.upstream.commit()
    h.run()
    moved = h.configmap("moving")
    assert moved is not None and meta(moved).uid == uid
    assert labels_of(moved)["gitopsguard.io/unit"] == other_unit.name
    assert Action.DELETED.value not in actions(h.run()).values()


def test_reconcile_command_reports_changes_and_exits_0_1_2(h: Harness, dev_cluster: LiveCluster) -> None:
    def run() -> Result:
        return CliRunner().invoke(main, [
            "reconcile", "--repo", str(h.upstream.bare), "--path", "apps", "--unit", h.namespace,
            "--namespace", h.namespace, "--kubeconfig", str(dev_cluster.kubeconfig), "--workdir", str(h.workdir),
            "--audit-log", str(audit_log),
        ])  # fmt: skip

    audit_log = h.workdir.parent / "audit.jsonl"

    h.configmaps("a", "b")
    h.upstream.commit()
    applied = run()
    assert applied.exit_code == 0, applied.output
    assert f"ConfigMap/{h.namespace}/a created" in applied.output
    assert "2 created" in applied.output

    h.upstream.remove("apps/b.yaml")
    h.upstream.commit()
    held = run()
    assert held.exit_code == 1, held.output
    assert "mass-prune brake engaged" in held.output

    h.upstream.write("apps/c.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [\n")
    h.upstream.commit()
    failed = run()
    assert failed.exit_code == 2
    assert "error: apps/c.yaml:" in failed.output
    assert "The cluster keeps its last good state." in failed.output

    events = [(r.event, r.subject) for r in AuditLog(audit_log).records()]
    assert events[:2] == [("created", f"ConfigMap/{h.namespace}/a"), ("created", f"ConfigMap/{h.namespace}/b")]
    assert ("brake-engaged", f"unit/{h.namespace}") in events
    assert events[-1] == ("reconcile-failed", f"unit/{h.namespace}")
    verified = CliRunner().invoke(main, ["audit", "--log", str(audit_log), "verify"])
    assert verified.exit_code == 0 and "intact" in verified.output

    status = CliRunner().invoke(main, ["status", "--unit", h.namespace, "--kubeconfig", str(dev_cluster.kubeconfig)])
    assert status.exit_code == 1, status.output
    assert f"unit {h.namespace}: FAILING" in status.output
    assert "apps/c.yaml:" in status.output
    assert f"ConfigMap/{h.namespace}/b skipped: mass-prune brake" in status.output  # the last pass that acted


def test_no_op_pass_writes_nothing_not_even_the_inventory(h: Harness) -> None:
    h.configmaps("a", "b")
    h.upstream.commit()
    h.run()
    h.run()  # settles resourceVersions the server bumped after the first write, if any
    inventory_cm = ("gitopsguard-inventory-" + h.namespace, "gitopsguard-system")
    before = meta(client.CoreV1Api(h.api).read_namespaced_config_map(*inventory_cm)).resource_version
    result = h.run()
    assert set(actions(result).values()) == {"unchanged"}
    after = meta(client.CoreV1Api(h.api).read_namespaced_config_map(*inventory_cm)).resource_version
    assert after == before


class CountingApplier(Applier):
    def __init__(self, api: client.ApiClient) -> None:
        super().__init__(api)
        self.dry_runs: list[str] = []

    def dry_run(self, desired: Sequence[Prepared], compare: Container[ObjectKey]) -> dict[ObjectKey, KubeObject]:
        self.dry_runs += [str(d.key) for d in desired]
        return super().dry_run(desired, compare)


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: "nginx:1.25", resources: {limits: {cpu: "0.5"}}}]}
"""


def test_status_written_by_a_controller_is_not_drift_and_costs_no_dry_run(h: Harness) -> None:
    h.upstream.write("apps/web.yaml", DEPLOYMENT)
    h.upstream.commit()
    assert h.run().error is None
    apps, inventory = client.AppsV1Api(h.api), InventoryStore(h.api)
    versions = {k: e.resource_version for k, e in inventory.load(h.namespace).entries.items()}
    deadline = time.monotonic() + 30  # the controller-manager writes status and a revision annotation
    while meta(apps.read_namespaced_deployment("web", h.namespace)).resource_version in versions.values():
        assert time.monotonic() < deadline, "the controller-manager never updated the Deployment"
        time.sleep(0.2)
    applier = CountingApplier(h.api)
    source = GitSource(SourceSpec(h.upstream.url), h.workdir)
    result = reconcile(Unit(h.namespace, "apps", default_namespace=h.namespace), source, applier, inventory)
    assert set(actions(result).values()) == {"unchanged"}
    assert applier.dry_runs == []
    assert {k: e.resource_version for k, e in inventory.load(h.namespace).entries.items()} == versions, "no write"

    apps.patch_namespaced_deployment("web", h.namespace, {"spec": {"replicas": 3}})  # now real drift
    result = reconcile(Unit(h.namespace, "apps", default_namespace=h.namespace), source, applier, inventory)
    assert applier.dry_runs == [f"Deployment/{h.namespace}/web"]
    assert actions(result)[f"Deployment/{h.namespace}/web"] == "configured"
    assert apps.read_namespaced_deployment("web", h.namespace).spec.replicas == 1


def test_a_pass_over_the_applied_commit_prepares_only_the_objects_that_moved(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h.configmaps("a", "b")
    h.upstream.commit()
    assert h.run().error is None
    client.CoreV1Api(h.api).patch_namespaced_config_map("a", h.namespace, {"metadata": {"annotations": {"x": "1"}}})
    prepared: list[str] = []

    def counted(
        manifests: tuple[Manifest, ...], *, unit: str, default_namespace: str, namespaced: Callable[[Manifest], bool]
    ) -> list[Desired]:
        prepared.extend(str(m.key) for m in manifests)
        return prepare(manifests, unit=unit, default_namespace=default_namespace, namespaced=namespaced)

    monkeypatch.setattr("gitopsguard.at_rest.prepare", counted)
    monkeypatch.setattr("gitopsguard.sync.apply.prepare", counted)
    result = h.run()  # "a" moved (another writer added an annotation Git does not set); "b" did not
    assert set(actions(result).values()) == {"unchanged"}
    assert prepared == ["ConfigMap/a"]  # as rendered: the unit's default namespace is filled in later


def test_the_same_commit_with_another_default_namespace_is_applied_there(h: Harness, namespace: str) -> None:
    h.configmaps("a")
    h.upstream.commit()
    assert h.run().error is None
    other = f"{namespace}-b"
    client.CoreV1Api(h.api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    try:
        source = GitSource(SourceSpec(h.upstream.url), h.workdir)
        unit = Unit(h.namespace, "apps", default_namespace=other)
        result = reconcile(unit, source, Applier(h.api), InventoryStore(h.api))
        assert actions(result) == {f"ConfigMap/{other}/a": "created", f"ConfigMap/{namespace}/a": "skipped"}
        assert result.brake is not None  # moving every object is a mass prune: the old one waits for release
        assert h.configmap("a", other) is not None and h.configmap("a") is not None
    finally:
        client.CoreV1Api(h.api).delete_namespace(other)


def test_pass_over_the_same_commit_repairs_an_edited_object(h: Harness) -> None:
    h.configmaps("a", "b")
    h.upstream.commit()
    h.run()
    client.CoreV1Api(h.api).patch_namespaced_config_map("a", h.namespace, {"data": {"value": "hacked"}})
    result = h.run()
    assert actions(result)[f"ConfigMap/{h.namespace}/a"] == "configured"
    assert actions(result)[f"ConfigMap/{h.namespace}/b"] == "unchanged"
    assert data_of(h.configmap("a")) == {"value": "1"}


def test_pass_over_the_same_commit_recreates_a_deleted_object(h: Harness) -> None:
    h.configmaps("a", "b")
    h.upstream.commit()
    h.run()
    client.CoreV1Api(h.api).delete_namespaced_config_map("b", h.namespace)
    assert actions(h.run())[f"ConfigMap/{h.namespace}/b"] == "created"
    assert h.configmap("b") is not None


def test_diff_shows_changes_masks_secrets_previews_prunes_and_writes_nothing(
    h: Harness, dev_cluster: LiveCluster
) -> None:
    def diff() -> Result:
        return CliRunner().invoke(main, [
            "diff", "--repo", str(h.upstream.bare), "--path", "apps", "--unit", h.namespace,
            "--namespace", h.namespace, "--kubeconfig", str(dev_cluster.kubeconfig), "--workdir", str(h.workdir),
        ])  # fmt: skip

    h.configmaps("a", "b", "c", "d", "e")
    h.upstream.commit()
    h.run()
    unchanged = diff()
    assert unchanged.exit_code == 0, unchanged.output

    h.upstream.write("apps/a.yaml", CONFIGMAP.format(name="a", value="2"))
    h.upstream.write("apps/s.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {token: hunter2}\n")
    h.upstream.remove("apps/e.yaml")
    h.upstream.commit()
    changed = diff()
    assert changed.exit_code == 1, changed.output
    assert "-  value: '1'" in changed.output and "+  value: '2'" in changed.output
    assert "hunter2" not in changed.output and "aHVudGVyMg==" not in changed.output
    assert "'*** (new value)'" in changed.output
    assert f"- ConfigMap/{h.namespace}/e would be deleted" in changed.output
    assert data_of(h.configmap("a")) == {"value": "1"}
    assert h.configmap("e") is not None


def test_report_only_unit_reports_drift_and_pending_prunes_and_changes_nothing(h: Harness) -> None:
    h.configmaps("a", "b", "c", "d", "e")
    h.upstream.commit()
    h.run()
    client.CoreV1Api(h.api).patch_namespaced_config_map("a", h.namespace, {"data": {"value": "edited"}})
    h.upstream.remove("apps/e.yaml")
    h.upstream.commit()
    source = GitSource(SourceSpec(h.upstream.url), h.workdir)
    watcher = Unit(h.namespace, "apps", default_namespace=h.namespace, report_only=True)
    report = reconcile(watcher, source, Applier(h.api), InventoryStore(h.api))
    details = {str(c.key): c.detail for c in report.changes if c.action is Action.SKIPPED}
    assert details[f"ConfigMap/{h.namespace}/a"].startswith("report-only: would be configured; drift repaired")
    assert details[f"ConfigMap/{h.namespace}/e"] == "report-only: would be deleted"
    assert data_of(h.configmap("a")) == {"value": "edited"}
    assert h.configmap("e") is not None
    repaired = h.run()  # the same unit, no longer report-only, repairs what was reported
    assert actions(repaired)[f"ConfigMap/{h.namespace}/a"] == "configured"
    assert data_of(h.configmap("a")) == {"value": "1"} and h.configmap("e") is None


def test_unmanaged_workloads_are_reported_then_backed_up_and_deleted_after_the_grace(h: Harness) -> None:
    h.upstream.write(
        "apps/ns.yaml",
        f"""\
        apiVersion: v1
        kind: Namespace
        metadata:
          name: {h.namespace}
          annotations: {{gitopsguard.io/unmanaged: delete, gitopsguard.io/unmanaged-grace: 2s}}
        """,
    )
    h.configmaps("a")
    h.upstream.commit()
    core = client.CoreV1Api(h.api)
    # A fresh namespace gets its default ServiceAccount from the controller-manager a moment later;
    # until then the API server refuses pods. This pod mounts no token, and we wait for the account.
    deadline = time.monotonic() + 30
    while not any(meta(sa).name == "default" for sa in core.list_namespaced_service_account(h.namespace).items):
        assert time.monotonic() < deadline, "the default ServiceAccount never appeared"
        time.sleep(0.1)
    container = client.V1Container(name="c", image="busybox")
    spec = client.V1PodSpec(containers=[container], automount_service_account_token=False)
    core.create_namespaced_pod(h.namespace, client.V1Pod(metadata=client.V1ObjectMeta(name="stray"), spec=spec))
    backups = h.workdir.parent / "backups"
    unit = Unit(h.namespace, "apps", default_namespace=h.namespace, backup_dir=backups)
    source = GitSource(SourceSpec(h.upstream.url), h.workdir)

    first = reconcile(unit, source, Applier(h.api), InventoryStore(h.api))
    assert "unless added to Git" in {str(c.key): c.detail for c in first.changes}[f"Pod/{h.namespace}/stray"]
    time.sleep(2.5)
    second = reconcile(unit, source, Applier(h.api), InventoryStore(h.api))
    change = next(c for c in second.changes if str(c.key) == f"Pod/{h.namespace}/stray")
    assert change.action is Action.DELETED and "backup:" in change.detail
    (saved,) = (backups / h.namespace / h.namespace).glob("Pod-stray-*.yaml")
    assert yaml.safe_load(saved.read_text())["spec"]["containers"][0]["image"] == "busybox"
    assert "resourceVersion" not in saved.read_text()
    eventually_gone = [
        meta(p).name for p in core.list_namespaced_pod(h.namespace).items if not meta(p).deletion_timestamp
    ]
    assert "stray" not in eventually_gone
    assert h.configmap("a") is not None


def test_kinds_listed_together_name_the_one_the_server_refuses(
    dev_cluster: LiveCluster, admin_api: client.ApiClient, namespace: str
) -> None:
    rbac = client.RbacAuthorizationV1Api(admin_api)
    rule = client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["list"])
    rbac.create_namespaced_role(namespace, client.V1Role(metadata=client.V1ObjectMeta(name="list-cm"), rules=[rule]))
    bind_user(admin_api, namespace, "alice-list-cm", "Role", "list-cm")
    client.CoreV1Api(admin_api).create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="seen"))
    )
    alice = Applier(dev_cluster.api("dev-alice"))
    deadline = time.monotonic() + 10
    while True:  # the API server's authorizer learns of the binding a moment later
        try:
            listed = alice.list_in_namespace([("v1", "ConfigMap")], namespace)
            break
        except ApplyError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert {key.name for key in listed} >= {"seen"}
    for kinds in ([("v1", "ConfigMap"), ("v1", "Service")], [("v1", "Service"), ("v1", "ConfigMap")]):
        with pytest.raises(ApplyError, match=rf"^listing Service in namespace {namespace}: .*forbidden"):
            alice.list_in_namespace(kinds, namespace)


def test_a_revision_writing_into_the_controller_namespace_is_refused_whole(h: Harness) -> None:
    """A contributor (or an approver of "anything else") must not rewrite the controller's configuration,
    inventories or trust file, which live in gitopsguard-system: that would turn review off."""
    h.configmaps("a")
    h.upstream.write("apps/evil.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: gitopsguard-config\n"
                     "  namespace: gitopsguard-system\ndata: {review-mode: 'off'}\n")  # fmt: skip
    h.upstream.commit()
    result = h.run()
    assert result.error is not None and "apps/evil.yaml" in result.error
    assert "the controller's own namespace" in result.error
    assert h.configmap("a") is None  # nothing of the revision was applied
    assert h.configmap("gitopsguard-config", "gitopsguard-system") is None
