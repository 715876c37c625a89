"""A retirement deletes an object only as it read it (``fleet_retire.py``: uid and resourceVersion
preconditions), on the real API server. Who: another replica's pass that takes the object over (relabels it with
its own Unit's id, same uid) between the retiring replica's read and its delete; a uid precondition alone lets
that delete through.

With the retirement tests' repository (``test_units_retire.py``: Units ``a`` to ``d``, one ConfigMap each)."""

from __future__ import annotations

from kubernetes import client

from gitopsguard.cluster.apply import Applier
from gitopsguard.errors import ClusterError
from gitopsguard.fleet_turns import AccountOf
from gitopsguard.model import UNIT_LABEL, Action, ObjectKey
from tests.integration.test_units_retire import NAMES, Repo, all_ready
from tests.integration.test_units_retire import repo as repo  # the fixture, used by name
from tests.kube import meta
from tests.waiting import eventually


def relabelling_before_each_delete(api: client.ApiClient, unit: str) -> AccountOf:
    """Appliers whose every delete comes just after someone relabelled the object with ``unit``."""

    class Relabelling(Applier):
        def delete(
            self, key: ObjectKey, api_version: str, *, uid: str | None = None, resource_version: str | None = None
        ) -> ClusterError | None:
            body = {"metadata": {"labels": {UNIT_LABEL: unit}}}
            client.CoreV1Api(api).patch_namespaced_config_map(key.name, key.namespace, body)
            return super().delete(key, api_version, uid=uid, resource_version=resource_version)

    own = Relabelling(api)
    return lambda _spec: own


def test_an_object_relabelled_between_the_retirements_read_and_its_delete_is_kept(repo: Repo) -> None:
    other = f"{repo.namespace}.elsewhere"
    loop = repo.start(account_of=relabelling_before_each_delete(repo.api, other))
    all_ready(repo)
    before = meta(client.CoreV1Api(repo.api).read_namespaced_config_map("d", repo.namespace)).uid
    repo.declare(**{n: f"{{path: {n}}}" for n in NAMES if n != "d"})
    repo.commit("d leaves")
    # the next read finds it no longer d's: the retirement ends, keeping it
    eventually(lambda: not repo.inventory("d") and repo.recorded() == "3", 60, every=0.5)
    kept = meta(client.CoreV1Api(repo.api).read_namespaced_config_map("d", repo.namespace))
    assert kept.uid == before and (kept.labels or {}).get(UNIT_LABEL) == other
    failed = [(c.key.name, c.error and c.error.kind) for r in loop.results for c in r.changes
              if c.action is Action.FAILED]  # fmt: skip
    assert failed == [("d", "ConflictError")], failed
    assert not [c for r in loop.results for c in r.changes if c.action is Action.DELETED and c.key.kind != "Unit"]
