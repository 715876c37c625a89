"""bench/units_1000.py's repository is what the Units loop serves, and its write count sees what it must.

The repository is rendered and read by gitopsguard's own code (``render``, ``units/root.py``): a builder that
wrote overlapping folders, a Unit into a Unit's folder or an invalid spec would bench refusals, not passes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.units_1000 import BENCH_LABEL, BENCH_VALUE, Layout, repository_files, write_of_run
from gitopsguard.render.render import render
from gitopsguard.units.root import Root, minted_units, units_of_root

LAYOUT = Layout(units=30, objects=4, namespaces=4, interval=60, token="abc123")


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    top = tmp_path_factory.mktemp("repo")
    for path, text in repository_files(LAYOUT).items():
        (top / path).parent.mkdir(parents=True, exist_ok=True)
        (top / path).write_text(text)
    return top


def test_the_root_declares_every_unit_and_refuses_none(checkout: Path) -> None:
    declared = units_of_root(Root("root", LAYOUT.root_unit), render(checkout, "root").manifests)
    assert declared.refused == ()
    assert len(declared.units) == LAYOUT.units
    assert len({u.path for u in declared.units}) == LAYOUT.units
    assert {u.ref.namespace for u in declared.units} == set(LAYOUT.all_namespaces())
    assert {u.interval.total_seconds() for u in declared.units} == {60}


def test_every_namespace_the_root_applies_carries_the_label_cleanup_removes(checkout: Path) -> None:
    namespaces = [m.body for m in render(checkout, "root").manifests if m.body["kind"] == "Namespace"]
    assert sorted(n["metadata"]["name"] for n in namespaces) == LAYOUT.all_namespaces()
    assert all(n["metadata"]["labels"] == {BENCH_LABEL: BENCH_VALUE} for n in namespaces)
    assert all(n.startswith(LAYOUT.prefix) for n in LAYOUT.all_namespaces()), "the audit count finds them by prefix"


def test_each_unit_folder_renders_its_objects_in_its_own_namespace_and_no_unit(checkout: Path) -> None:
    declared = units_of_root(Root("root", LAYOUT.root_unit), render(checkout, "root").manifests)
    for spec in declared.units:
        manifests = render(checkout, spec.path).manifests
        assert [m.body["kind"] for m in manifests] == ["ConfigMap", "ServiceAccount", "Service", "ConfigMap"]
        assert {m.body["metadata"]["namespace"] for m in manifests} == {spec.ref.namespace}
        assert minted_units(spec, manifests) == ()
    services = [m.body for m in render(checkout, "units").manifests if m.body["kind"] == "Service"]
    assert all(p["protocol"] == "TCP" for s in services for p in s["spec"]["ports"]), "1.20 refuses SSA without it"


def audit_line(namespace: str, name: str, **changes: object) -> bytes:
    event: dict[str, object] = {
        "stage": "ResponseComplete", "verb": "patch", "userAgent": "gitopsguard/0.1.0 python",
        "requestURI": f"/api/v1/namespaces/{namespace}/configmaps/{name}?fieldManager=gitopsguard",
        "objectRef": {"resource": "configmaps", "namespace": namespace, "name": name},
        "responseStatus": {"code": 200},
    }  # fmt: skip
    return json.dumps({**event, **changes}).encode()


def test_a_write_on_an_object_of_the_run_is_counted() -> None:
    ns = LAYOUT.namespace(3)
    written = write_of_run(audit_line(ns, "u-0003-0"), LAYOUT.prefix)
    assert written == f"patch configmaps {ns}/u-0003-0 by gitopsguard/0.1.0"
    inventory = audit_line("gitopsguard-system", f"gitopsguard-inventory-{ns}.u-0003", verb="update")
    assert write_of_run(inventory, LAYOUT.prefix), "a unit's inventory is named after its namespace"
    status = audit_line(ns, "u-0003", objectRef={"resource": "units", "subresource": "status", "namespace": ns,
                                                 "name": "u-0003"})  # fmt: skip
    assert write_of_run(status, LAYOUT.prefix) == f"patch units/status {ns}/u-0003 by gitopsguard/0.1.0"


@pytest.mark.parametrize(
    "changes",
    [
        {"requestURI": "/api/v1/namespaces/x/configmaps/y?dryRun=All"},
        {"responseStatus": {"code": 409}},
        {"verb": "get"},
        {"stage": "ResponseStarted"},
    ],
    ids=["dry-run", "refused", "read", "not-complete"],
)
def test_what_stored_nothing_is_not_counted(changes: dict[str, object]) -> None:
    assert write_of_run(audit_line(LAYOUT.namespace(0), "u-0000-0", **changes), LAYOUT.prefix) is None


def test_another_runs_objects_and_unparsable_lines_are_not_counted() -> None:
    other = Layout(token="def456")
    assert write_of_run(audit_line(other.namespace(0), "u-0000-0"), LAYOUT.prefix) is None
    assert write_of_run(LAYOUT.prefix.encode() + b"{not json", LAYOUT.prefix) is None
