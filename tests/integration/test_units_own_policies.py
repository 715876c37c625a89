"""A Unit's own policies (``spec.policiesPath``) on the real API server: they add restrictions to the root's
for that Unit alone, are read from the revision its manifests come from, and a team file that would loosen the
platform's refuses the Unit's revision whole, its last applied commit staying (issue 19).

The root path declares two Units of the test's namespace: ``strict`` (folder ``strict``, policies in
``strict-policies``) and ``loose`` (folder ``loose``, none of its own). The platform's policies (``policies/``)
want an ``owner`` label on every ConfigMap not labelled ``legacy: "yes"``; strict's own want a ``version`` key."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.cluster.units import UnitStore
from gitopsguard.fleet import Fleet, accounts
from gitopsguard.reconcile import ReconcileResult, Unit
from gitopsguard.source import GitSource, SourceSpec
from tests.gitrepo import Upstream
from tests.integration.test_units_crd import install_unit_crd
from tests.integration.test_units_loop import Running, commit
from tests.waiting import eventually, value_of

pytestmark = pytest.mark.integration

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


def configmap(name: str, namespace: str, value: str, *, owner: bool = True, version: bool = True) -> str:
    labels = "\n  labels: {owner: team}" if owner else ""
    extra = '\n  version: "1"' if version else ""
    return (f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {namespace}{labels}\n"
            f'data:\n  value: "{value}"{extra}\n')  # fmt: skip


def units(namespace: str, strict_policies: str = "strict-policies") -> str:
    return "".join(
        f"{API}kind: Unit\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec: {spec}\n---\n"
        for name, spec in (("strict", f"{{path: strict, policiesPath: {strict_policies}}}"), ("loose", "{path: loose}"))
    )


def start(
    admin_api: client.ApiClient, namespace: str, upstream: Upstream, workdir: Path
) -> tuple[Running, Callable[[], None]]:
    """The Units loop on a thread, as ``run --root --policies-path policies`` runs it; and how to stop it."""
    raw = RawApi(admin_api)
    results: list[ReconcileResult] = []
    notes: list[str] = []
    own = Applier(admin_api)
    fleet = Fleet(Unit(f"{namespace}-root", "root", namespace, policies_path="policies"),
                  GitSource(SourceSpec(upstream.url), workdir), own, InventoryStore(admin_api),
                  raw, interval=60, on_result=results.append, on_note=notes.append,
                  account_of=accounts(own))  # fmt: skip
    stop = threading.Event()
    thread = threading.Thread(target=fleet.run, args=(stop,), daemon=True)
    thread.start()

    def stopped() -> None:
        stop.set()
        fleet.wake()
        thread.join(20)
        assert not thread.is_alive(), "the loop stops when asked"

    return Running(upstream, namespace, fleet, results, notes, UnitStore(raw)), stopped


def repository(admin_api: client.ApiClient, namespace: str, tmp_path: Path) -> Upstream:
    """The first commit: each ConfigMap has its owner label and a version."""
    install_unit_crd(RawApi(admin_api))
    upstream = Upstream(tmp_path / "git")
    upstream.write("root/units.yaml", units(namespace))
    upstream.write("policies/owner.yaml", OWNER_LABEL)
    upstream.write("strict-policies/version.yaml", VERSION_KEY)
    upstream.write("strict/cm.yaml", configmap("strict", namespace, "1"))
    upstream.write("loose/cm.yaml", configmap("loose", namespace, "1"))
    upstream.commit()
    return upstream


def both_ready(state: Running) -> None:
    eventually(lambda: state.ready("strict").get("status") == "True" == state.ready("loose").get("status"), 60,
               every=0.5)  # fmt: skip


@pytest.fixture
def running(admin_api: client.ApiClient, namespace: str, tmp_path: Path) -> Iterator[Running]:
    """Both Units applied at the first commit."""
    state, stop = start(admin_api, namespace, repository(admin_api, namespace, tmp_path), tmp_path / "gg")
    try:
        both_ready(state)
        yield state
    finally:
        stop()


def governing(running: Running, namespace: str) -> list[str]:
    """The names of the policies the live scan of ``run --root`` judges ``namespace`` by."""
    found = running.fleet.governance()
    return [p.name for p in found.for_namespace(namespace).policies] if found else []


def test_a_unit_is_refused_by_its_own_added_policy_while_a_unit_without_it_is_applied(
    running: Running, admin_api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(admin_api)
    # the live scan judges strict's target namespace by its policies too, and others by the platform's alone
    assert governing(running, namespace) == ["owner-label", f"{namespace}.strict/version-key"]
    assert governing(running, "default") == ["owner-label"]
    commit(running, {"strict/cm.yaml": configmap("strict", namespace, "2", version=False),
                     "loose/cm.yaml": configmap("loose", namespace, "2", version=False)})  # fmt: skip
    eventually(lambda: running.ready("strict").get("reason") == "PolicyDenied", 60, every=0.5)
    message = running.said("strict")
    assert f"ConfigMap/{namespace}/strict: STRICT1 HIGH every ConfigMap of team strict says its version" in message
    assert f"policy {namespace}.strict/version-key" in message, message
    assert value_of(core, "strict", namespace) == "1", "the refused revision applied nothing; the last one stays"
    eventually(lambda: value_of(core, "loose", namespace) == "2", 30, every=0.5)
    assert running.ready("loose")["status"] == "True"


def test_a_units_policies_are_read_from_the_revision_its_manifests_come_from(
    running: Running, admin_api: client.ApiClient, namespace: str
) -> None:
    """One commit drops the version and the policy that wants it: applied. One adds a policy and an object
    that breaks it: refused. Never the manifests of one commit judged by the policies of another."""
    core = client.CoreV1Api(admin_api)
    running.upstream.remove("strict-policies/version.yaml")
    commit(running, {"strict/cm.yaml": configmap("strict", namespace, "2", version=False)})
    eventually(lambda: value_of(core, "strict", namespace) == "2", 60, every=0.5)
    eventually(lambda: governing(running, namespace) == ["owner-label"], 10, every=0.2)
    tier = VERSION_KEY.replace("version-key", "tier-key").replace("'version'", "'tier'")
    sha = commit(running, {"strict-policies/tier.yaml": tier, "strict/cm.yaml": configmap("strict", namespace, "3")})
    eventually(lambda: running.unit("strict").status.get("lastAttemptedRevision") == sha, 60, every=0.5)
    assert running.ready("strict")["reason"] == "PolicyDenied"
    assert value_of(core, "strict", namespace) == "2"
    assert governing(running, namespace) == ["owner-label"], "a refused revision's policies govern nothing"


@pytest.mark.parametrize(("file", "text", "says"), [
    ("exception.yaml", API + "kind: PolicyException\nmetadata: {name: mine}\nspec:\n  policies: [owner-label]\n"
     "  match: {names: [strict]}\n  reason: we know\n  expires: 2099-01-01T00:00:00Z\n", "PolicyException mine"),
    ("legacy.yaml", API + "kind: Policy\nmetadata: {name: tag-legacy}\nspec:\n"
     "  mutate: {addLabels: {legacy: \"yes\"}}\n", "policy tag-legacy mutates objects"),
    ("owner.yaml", OWNER_LABEL.replace("enforce\n", "audit\n"), "policy owner-label is the platform's already"),
])  # fmt: skip
def test_a_team_policy_file_that_would_loosen_the_platforms_is_refused_and_the_last_good_state_stays(
    running: Running, admin_api: client.ApiClient, namespace: str, file: str, text: str, says: str
) -> None:
    core = client.CoreV1Api(admin_api)
    commit(running, {f"strict-policies/{file}": text,
                     "strict/cm.yaml": configmap("strict", namespace, "2", owner=False)})  # fmt: skip
    eventually(lambda: running.ready("strict").get("status") == "False", 60, every=0.5)
    ready, said = running.ready("strict"), running.said("strict")
    assert ready["message"].startswith(f"strict-policies/{file}:1: {says}"), ready
    assert "can only add restrictions" in said and ready["reason"] == "BuildFailed"
    assert value_of(core, "strict", namespace) == "1", "nothing of the refused revision is applied"


def test_a_policies_path_in_another_units_folder_is_refused_and_the_unit_applies_nothing(
    running: Running, admin_api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(admin_api)
    commit(running, {"root/units.yaml": units(namespace, strict_policies="loose/policies"),
                     "strict/cm.yaml": configmap("strict", namespace, "2")})  # fmt: skip
    eventually(lambda: running.ready("strict").get("reason") == "InvalidSpec", 60, every=0.5)
    assert f"spec.policiesPath loose/policies overlaps Unit/{namespace}/loose's path loose" in running.ready(
        "strict")["message"]  # fmt: skip
    assert value_of(core, "strict", namespace) == "1"
    assert running.ready("loose")["status"] == "True"


def test_after_a_restart_a_unit_whose_head_is_refused_keeps_governing_its_namespace_by_its_applied_policies(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    first, stop = start(admin_api, namespace, repository(admin_api, namespace, tmp_path), tmp_path / "gg")
    try:
        both_ready(first)
        assert governing(first, namespace) == ["owner-label", f"{namespace}.strict/version-key"]
    finally:
        stop()
    # while no controller runs, strict's head becomes one its own policy refuses; then a new process starts
    first.upstream.write("strict/cm.yaml", configmap("strict", namespace, "2", version=False))
    sha = first.upstream.commit()
    again, stop = start(admin_api, namespace, first.upstream, tmp_path / "restarted")
    try:
        eventually(lambda: again.unit("strict").status.get("lastAttemptedRevision") == sha, 60, every=0.5)
        assert again.ready("strict")["reason"] == "PolicyDenied"
        eventually(lambda: governing(again, namespace) == ["owner-label", f"{namespace}.strict/version-key"], 10,
                   every=0.2)  # fmt: skip
    finally:
        stop()
