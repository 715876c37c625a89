"""A revision that fails its dry run after its Namespaces (or CRDs) were created: the rollback deletes what
this pass created, and nothing the unit never owned.

The attacker is a bad commit: it names an existing namespace it does not own, beside an object the server
refuses, so that the rollback of the failed revision deletes that namespace and everything in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitopsguard.audit import AuditLog
from gitopsguard.cli import main
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.errors import ConflictError
from gitopsguard.model import Action, ObjectKey
from gitopsguard.reconcile import ReconcileResult, Unit, reconcile
from gitopsguard.source import GitSource, SourceSpec
from tests.gitrepo import Upstream
from tests.integration.conftest import LiveCluster
from tests.kube import meta, name_of

pytestmark = pytest.mark.integration

REFUSED = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: refused\ndata:\n  "bad key!": "x"\n'
NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"


@pytest.fixture
def namespaces(admin_api: client.ApiClient, namespace: str) -> Iterator[list[str]]:
    """Names of extra namespaces a test makes (or makes gitopsguard make); all deleted afterwards."""
    made: list[str] = []
    yield made
    core = client.CoreV1Api(admin_api)
    for name in made:
        try:
            core.delete_namespace(name)
        except ApiException as error:
            if error.status != 404:
                raise


def phase(api: client.ApiClient, name: str) -> str | None:
    try:
        status = client.CoreV1Api(api).read_namespace(name).status
        assert status is not None, f"Namespace/{name} came without a status"
        return str(status.phase)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def existing_namespace_with_data(api: client.ApiClient, name: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    core.create_namespaced_config_map(name, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="precious")))


def run(api: client.ApiClient, upstream: Upstream, namespace: str, workdir: Path) -> ReconcileResult:
    source = GitSource(SourceSpec(upstream.url), workdir)
    return reconcile(Unit(namespace, "apps", namespace), source, Applier(api), InventoryStore(api))


def test_a_failed_revision_naming_an_existing_namespace_is_refused_without_deleting_it(
    admin_api: client.ApiClient, namespace: str, namespaces: list[str], tmp_path: Path
) -> None:
    victim = f"{namespace}-victim"
    namespaces.append(victim)
    existing_namespace_with_data(admin_api, victim)
    upstream = Upstream(tmp_path / "git")
    upstream.write("apps/ns.yaml", NAMESPACE.format(name=victim))
    upstream.write("apps/refused.yaml", REFUSED)
    upstream.commit()
    result = run(admin_api, upstream, namespace, tmp_path / "gg")
    assert result.error is not None and "ConfigMap" in result.error and "refused" in result.error
    assert phase(admin_api, victim) == "Active", "a namespace the unit never owned was deleted"
    assert client.CoreV1Api(admin_api).read_namespaced_config_map("precious", victim) is not None
    assert not [c for c in result.changes if c.action is Action.DELETED]


def test_the_rollback_deletes_exactly_what_this_pass_created_and_reports_each_deletion(
    admin_api: client.ApiClient, namespace: str, namespaces: list[str], tmp_path: Path
) -> None:
    """The general rule: of three Namespaces in a failing revision (one this unit owns already, one that
    exists without being ours, one new), only the new one is deleted, and its deletion is in the result."""
    owned, foreign, fresh = (f"{namespace}-{suffix}" for suffix in ("owned", "foreign", "fresh"))
    namespaces += [owned, foreign, fresh]
    upstream = Upstream(tmp_path / "git")
    upstream.write("apps/owned.yaml", NAMESPACE.format(name=owned))
    upstream.commit()
    assert run(admin_api, upstream, namespace, tmp_path / "gg").error is None
    existing_namespace_with_data(admin_api, foreign)
    for name in (foreign, fresh):
        upstream.write(f"apps/{name}.yaml", NAMESPACE.format(name=name))
    upstream.write("apps/refused.yaml", REFUSED)
    upstream.commit()
    result = run(admin_api, upstream, namespace, tmp_path / "gg")
    assert result.error is not None
    assert phase(admin_api, owned) == "Active" and phase(admin_api, foreign) == "Active"
    assert phase(admin_api, fresh) in (None, "Terminating"), "what the failed pass created is rolled back"
    deleted = [c for c in result.changes if c.action is Action.DELETED]
    assert [c.key for c in deleted] == [ObjectKey("", "Namespace", "", fresh)]
    assert "rolled back" in deleted[0].detail
    assert InventoryStore(admin_api).load(namespace).entries.keys() == {ObjectKey("", "Namespace", "", owned)}


def test_a_delete_with_a_uid_precondition_leaves_a_replaced_object_alone(
    admin_api: client.ApiClient, namespace: str
) -> None:
    """What the rollback deletes is the object the server created for us, not one recreated under its name."""
    core = client.CoreV1Api(admin_api)
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="replaced"))
    first = meta(core.create_namespaced_config_map(namespace, body)).uid
    core.delete_namespaced_config_map("replaced", namespace)
    core.create_namespaced_config_map(namespace, body)
    failure = Applier(admin_api).delete(ObjectKey("", "ConfigMap", namespace, "replaced"), "v1", uid=first)
    assert isinstance(failure, ConflictError) and str(failure).startswith(f"ConfigMap/{namespace}/replaced: ")
    assert core.read_namespaced_config_map("replaced", namespace) is not None


def test_the_reconcile_command_exits_2_and_audits_each_rollback_deletion(
    admin_api: client.ApiClient, namespace: str, namespaces: list[str], tmp_path: Path, dev_cluster: LiveCluster
) -> None:
    """Before: the audit log held only ``reconcile-failed`` while a namespace was being deleted."""
    victim, fresh = f"{namespace}-victim", f"{namespace}-fresh"
    namespaces += [victim, fresh]
    existing_namespace_with_data(admin_api, victim)
    upstream = Upstream(tmp_path / "git")
    for name in (victim, fresh):
        upstream.write(f"apps/{name}.yaml", NAMESPACE.format(name=name))
    upstream.write("apps/refused.yaml", REFUSED)
    upstream.commit()
    audit_log = tmp_path / "audit.jsonl"
    failed = CliRunner().invoke(main, [
        "reconcile", "--repo", str(upstream.bare), "--path", "apps", "--unit", namespace, "--namespace", namespace,
        "--kubeconfig", str(dev_cluster.kubeconfig), "--workdir", str(tmp_path / "gg"), "--audit-log", str(audit_log),
    ])  # fmt: skip
    assert failed.exit_code == 2, failed.output
    assert "The cluster keeps its last good state." in failed.output
    assert phase(admin_api, victim) == "Active"
    records = [(r.event, r.subject, r.detail) for r in AuditLog(audit_log).records()]
    assert ("deleted", f"Namespace/{fresh}") in [(e, s) for e, s, _ in records]
    assert not [s for e, s, _ in records if e == "deleted" and victim in s]
    assert records[-1][0] == "reconcile-failed"


def test_the_rollback_leaves_alone_what_was_replaced_relabelled_or_marked_since_it_was_created(
    admin_api: client.ApiClient, namespace: str
) -> None:
    """The rule holds for each object at the moment of deletion, not only at creation: same uid, still
    labelled for this unit, not marked ``gitopsguard.io/prune: disabled``."""
    from gitopsguard.cluster.apply import Created
    from gitopsguard.model import UNIT_LABEL
    from gitopsguard.sync import roll_back

    core = client.CoreV1Api(admin_api)

    def made(name: str, labels: dict[str, str], annotations: dict[str, str] | None = None) -> Created:
        metadata = client.V1ObjectMeta(name=name, labels=labels, annotations=annotations)
        uid = meta(core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=metadata))).uid
        assert uid is not None, f"ConfigMap/{namespace}/{name} came without a uid"
        return Created(ObjectKey("", "ConfigMap", namespace, name), "v1", uid)

    ours = {UNIT_LABEL: namespace}
    created = [made("kept-as-made", ours), made("relabelled", {UNIT_LABEL: "other"}),
               made("marked", ours, {"gitopsguard.io/prune": "disabled"}), made("replaced", ours)]  # fmt: skip
    core.delete_namespaced_config_map("replaced", namespace)
    made("replaced", ours)  # same name, another object
    changes = {c.key.name: c for c in roll_back(namespace, created, Applier(admin_api))}
    assert changes["kept-as-made"].action is Action.DELETED
    assert {n for n, c in changes.items() if c.action is Action.SKIPPED} == {"relabelled", "marked", "replaced"}
    left = {name_of(c) for c in core.list_namespaced_config_map(namespace).items}
    assert {"relabelled", "marked", "replaced"} <= left and "kept-as-made" not in left
