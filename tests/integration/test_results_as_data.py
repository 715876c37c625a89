"""Results as data (issue 18), against the real API server: one ``Reconciler`` serves a unit pass after pass,
and what each pass did comes back as fields (apiVersion, reason, the drift found, the server's refusal with
its causes), not as words to parse."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.model import Action, Reason
from gitopsguard.reconcile import Reconciler, Unit
from gitopsguard.source import GitSource, SourceSpec
from tests.gitrepo import Upstream
from tests.kube import name_of

pytestmark = pytest.mark.integration

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: '1'\n"
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: c, image: nginx:1.25}}]}}
"""


def reconciler(upstream: Upstream, api: client.ApiClient, workdir: Path) -> Reconciler:
    source = GitSource(SourceSpec(upstream.url), workdir)
    return Reconciler(source, Applier(api), InventoryStore(api), renders={})


def test_an_object_the_server_refuses_comes_back_with_its_kind_causes_and_api_version(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """A contributor's bad commit: the revision is refused whole, and the refusal is data a caller can act
    on (the field at fault, whether retrying could help) while the message stays as it was."""
    upstream = Upstream(tmp_path / "git")
    upstream.write("apps/web.yaml", DEPLOYMENT.format(replicas=1))
    upstream.commit()
    unit, passes = Unit(namespace, "apps", namespace), reconciler(upstream, admin_api, tmp_path / "gg")
    assert passes.reconcile(unit).error is None
    upstream.write("apps/later.yaml", CONFIGMAP.format(name="later"))
    upstream.write("apps/web.yaml", DEPLOYMENT.format(replicas=-1))
    upstream.commit()
    result = passes.reconcile(unit)
    assert result.error is not None and "dry run" in result.error
    (refused,) = result.refused
    assert (str(refused.key), refused.api_version) == (f"Deployment/{namespace}/web", "apps/v1")
    assert (refused.action, refused.reason) == (Action.FAILED, Reason.DRY_RUN_REFUSED)
    assert refused.error is not None and (refused.error.kind, refused.error.retryable) == ("InvalidError", False)
    assert "spec.replicas" in {cause.field for cause in refused.error.causes}
    assert refused.detail in result.error  # the words are derived from the data, and still reach the user
    names = {name_of(c) for c in client.CoreV1Api(admin_api).list_namespaced_config_map(namespace).items}
    assert "later" not in names  # nothing of a refused revision is written


def test_a_new_object_the_server_refuses_comes_back_as_data_too(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    upstream = Upstream(tmp_path / "git")
    upstream.write("apps/web.yaml", DEPLOYMENT.format(replicas=-1))
    upstream.commit()
    result = reconciler(upstream, admin_api, tmp_path / "gg").reconcile(Unit(namespace, "apps", namespace))
    (refused,) = result.refused
    assert (refused.reason, refused.api_version) == (Reason.DRY_RUN_REFUSED, "apps/v1")
    assert refused.error is not None and refused.error.kind == "InvalidError"
    assert result.error is not None and refused.detail in result.error


def test_one_reconciler_serves_a_unit_pass_after_pass_and_reports_drift_as_data(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """A tenant edits, then deletes, an object Git owns; each repair says which, with the apiVersion Git gave."""
    upstream = Upstream(tmp_path / "git")
    upstream.write("apps/a.yaml", CONFIGMAP.format(name="a"))
    upstream.commit()
    unit, passes = Unit(namespace, "apps", namespace), reconciler(upstream, admin_api, tmp_path / "gg")
    assert [(c.action, c.reason) for c in passes.reconcile(unit).changes] == [(Action.CREATED, Reason.APPLIED)]
    core = client.CoreV1Api(admin_api)
    core.patch_namespaced_config_map("a", namespace, {"data": {"value": "edited"}})
    (edited,) = passes.reconcile(unit).changes
    assert (edited.action, edited.reason, edited.api_version) == (Action.CONFIGURED, Reason.DRIFTED, "v1")
    assert edited.drift is not None and not edited.drift.deleted and edited.drift.writer
    core.delete_namespaced_config_map("a", namespace)
    (deleted,) = passes.reconcile(unit).changes
    assert (deleted.action, deleted.reason) == (Action.CREATED, Reason.DRIFTED)
    assert deleted.drift is not None and deleted.drift.deleted
    assert deleted.detail == "drift repaired: it was deleted outside Git"
    assert [(c.action, c.reason) for c in passes.reconcile(unit).changes] == [(Action.UNCHANGED, Reason.IN_SYNC)]
