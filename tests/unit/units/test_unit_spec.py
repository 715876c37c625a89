"""units/spec.py: a Unit read from Git strictly, every refusal naming the file, the Unit and the field."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.errors import UnitError
from gitopsguard.model import Manifest, ObjectKey
from gitopsguard.units import UnitDefaults, UnitRef, is_unit, parse_unit
from gitopsguard.units.spec import CelCheck

ORIGIN = "units/team-a.yaml:7"
FULL = """
apiVersion: gitopsguard.io/v1alpha1
kind: Unit
metadata: {name: app, namespace: team-a}
spec:
  path: ./teams/a/
  interval: 10m
  dependsOn: [{name: infra, namespace: platform}, {name: db}]
  serviceAccountName: team-a-deployer
  suspend: false
  reportOnly: true
  prune: false
  wait: {enabled: true, cel: [{apiVersion: cert-manager.io/v1, kind: Certificate, expression: "self.status.ready"}]}
  timeout: 2m
  policiesPath: teams/a/policies
  targetNamespace: team-a
"""


def unit(spec: dict[str, Any] | None = None, **metadata: Any) -> Manifest:
    body: dict[str, Any] = {
        "apiVersion": "gitopsguard.io/v1alpha1", "kind": "Unit",
        "metadata": {"name": "app", "namespace": "team-a", **metadata}, "spec": {"path": "teams/a", **(spec or {})},
    }  # fmt: skip
    return Manifest(ObjectKey.of(body), body, ORIGIN)


def test_every_field_is_read() -> None:
    body = yaml.safe_load(FULL)
    spec = parse_unit(Manifest(ObjectKey.of(body), body, ORIGIN))
    assert spec.ref == UnitRef("team-a", "app") and spec.id == "team-a.app" and spec.origin == ORIGIN
    assert spec.path == "teams/a" and spec.interval == timedelta(minutes=10) and spec.timeout == timedelta(minutes=2)
    assert spec.depends_on == (UnitRef("platform", "infra"), UnitRef("team-a", "db"))  # namespace: the Unit's own
    assert spec.service_account_name == "team-a-deployer" and spec.report_only and not spec.prune
    assert spec.wait.enabled and spec.wait.cel == (CelCheck("cert-manager.io/v1", "Certificate", "self.status.ready"),)
    assert spec.policies_path == "teams/a/policies" and spec.target_namespace == "team-a"


def test_a_unit_that_says_nothing_gets_the_defaults() -> None:
    spec = parse_unit(unit(), UnitDefaults(interval=timedelta(minutes=3)))
    assert spec.interval == timedelta(minutes=3) and spec.prune and not spec.suspend and not spec.report_only
    assert spec.service_account_name is None and spec.timeout is None and not spec.wait.enabled


def test_the_example_error_names_file_line_unit_and_field() -> None:
    with pytest.raises(UnitError) as caught:
        parse_unit(unit({"interval": "5 minutes"}))
    assert str(caught.value).startswith('units/team-a.yaml:7: Unit/team-a/app: spec.interval: "5 minutes" is not '
                                        "a duration like 5m")  # fmt: skip


@pytest.mark.parametrize(
    "path", ["../other-team", "teams/../../etc", "teams/a/..", "/etc/kubernetes", "//server/share", "", "teams//a",
             "teams\\a", "teams/*", "teams/a?", "teams/[ab]", "teams/a b", "teams/\u00e9quipe", "teams/a\n",
             "teams/a\x00", "a" * 513, "~/x/..", "..", ".../..", "teams/\u2024\u2024"],
)  # fmt: skip
def test_a_path_that_leaves_the_repository_or_is_no_plain_path_is_refused(path: str) -> None:
    """The attacker: a team folder's author (or a bad commit) points a Unit outside its folder or the repo."""
    with pytest.raises(UnitError, match=r"^units/team-a.yaml:7: Unit/team-a/app: spec.path: "):
        parse_unit(unit({"path": path}))


@pytest.mark.parametrize(("path", "normal"), [("./teams/a/", "teams/a"), (".", "."), ("teams/.hidden", "teams/.hidden"),
                                              ("teams/..a", "teams/..a"), ("a/./b", "a/b")])  # fmt: skip
def test_plain_paths_are_read_in_one_spelling(path: str, normal: str) -> None:
    assert parse_unit(unit({"path": path})).path == normal


@pytest.mark.parametrize(
    ("spec", "field"),
    [({"interval": 300}, "interval"), ({"interval": "5"}, "interval"), ({"interval": "1m30s"}, "interval"),
     ({"interval": "\u0665m"}, "interval"),  # an Arabic-Indic five: \d would take it
     ({"interval": "9999999d"}, "interval"), ({"interval": "99999999999999999999999d"}, "interval"),
     ({"interval": "1s"}, "interval"), ({"interval": "8d"}, "interval"), ({"timeout": "2d"}, "timeout"),
     ({"timeout": True}, "timeout"), ({"suspend": "true"}, "suspend"), ({"suspend": 1}, "suspend"),
     ({"prune": "no"}, "prune"), ({"reportOnly": []}, "reportOnly"), ({"serviceAccountName": "system:masters"},
     "serviceAccountName"), ({"serviceAccountName": "Admin"}, "serviceAccountName"),
     ({"targetNamespace": "a.b"}, "targetNamespace"), ({"targetNamespace": 7}, "targetNamespace"),
     ({"policiesPath": "../policies"}, "policiesPath"), ({"path": None}, "path"), ({"path": ["a"]}, "path"),
     ({"dependsOn": "infra"}, "dependsOn"), ({"dependsOn": [{"name": "x"}] * 33}, "dependsOn"),
     ({"dependsOn": [{"name": "x", "kind": "Kustomization"}]}, "dependsOn[0]"),
     ({"dependsOn": [{"name": "Infra"}]}, "dependsOn[0]"), ({"dependsOn": [{"name": "app"}]}, "dependsOn[0]"),
     ({"dependsOn": [{"name": "x"}, {"name": "x", "namespace": "team-a"}]}, "dependsOn[1]"),
     ({"wait": True}, "wait"), ({"wait": {"enabled": "yes"}}, "wait"), ({"wait": {"cel": [{"kind": "X"}]}},
     "wait.cel[0]"), ({"wait": {"cel": [{"apiVersion": "v1", "kind": "X", "expression": "x" * 1025}]}},
     "wait.cel[0].expression"), ({"wait": {"cel": [{"apiVersion": "v1", "kind": "x", "expression": "true"}]}},
     "wait.cel[0].kind"), ({"dependOn": [{"name": "infra"}]}, "dependOn"), ({"path\n": "x"}, "path\\n")],
)  # fmt: skip
def test_an_odd_type_or_value_is_refused_naming_its_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(UnitError) as caught:
        parse_unit(unit(spec))
    assert str(caught.value).startswith(f"{ORIGIN}: Unit/team-a/app: spec.{field}"), str(caught.value)
    assert "\n" not in str(caught.value)  # hostile text stays on one line


@pytest.mark.parametrize(
    ("metadata", "starts"),
    [({"name": "App"}, f"{ORIGIN}: Unit: metadata.name"), ({"name": "a" * 254}, f"{ORIGIN}: Unit: metadata.name"),
     ({"name": None}, f"{ORIGIN}: Unit: metadata.name"), ({"namespace": "team_a"}, f"{ORIGIN}: Unit/app: metadata"),
     ({"generation": "1"}, f"{ORIGIN}: Unit/team-a/app: metadata.generation"),
     ({"generation": 2**64}, f"{ORIGIN}: Unit/team-a/app: metadata.generation")],
)  # fmt: skip
def test_a_name_namespace_or_generation_the_api_server_would_refuse_is_refused(
    metadata: dict[str, Any], starts: str
) -> None:
    with pytest.raises(UnitError) as caught:
        parse_unit(unit(**metadata))
    assert str(caught.value).startswith(starts), str(caught.value)


def test_a_unit_without_a_namespace_takes_the_applys_default_and_none_is_refused() -> None:
    manifest = unit()
    del manifest.body["metadata"]["namespace"]
    assert parse_unit(manifest, namespace="platform").ref == UnitRef("platform", "app")
    with pytest.raises(UnitError, match=r"metadata\.namespace"):
        parse_unit(manifest)


@pytest.mark.parametrize(
    "body",
    [{"apiVersion": "gitopsguard.io/v1alpha1", "kind": "Unit"},
     {"apiVersion": "gitopsguard.io/v1beta9", "kind": "unit"}, {"apiVersion": "gitopsguard.io/v1", "kind": "UNIT"},
     {"apiVersion": "gitopsguard.io/v1alpha1", "kind": "Units"}],
)  # fmt: skip
def test_any_version_and_case_of_our_unit_kind_counts_as_a_unit(body: dict[str, Any]) -> None:
    """Fail closed: what might be served as a Unit one day is judged as one today."""
    assert is_unit(body)
    assert not is_unit({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization"})


def test_a_unit_of_another_version_is_refused_rather_than_read_as_this_one() -> None:
    manifest = unit()
    manifest.body["apiVersion"] = "gitopsguard.io/v1beta1"
    with pytest.raises(UnitError, match=r"apiVersion and kind must be gitopsguard\.io/v1alpha1 Unit"):
        parse_unit(manifest)


hostile = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
fields = st.sampled_from(["path", "interval", "dependsOn", "serviceAccountName", "suspend", "reportOnly", "prune",
                          "wait", "timeout", "policiesPath", "targetNamespace"])  # fmt: skip


@given(st.dictionaries(fields, hostile, max_size=6))
@example({"interval": float("inf")})
@example({"dependsOn": [{"name": "x", "namespace": None}]})
@example({"wait": {"enabled": True, "cel": [{"apiVersion": "v1", "kind": "Pod", "expression": []}]}})
def test_any_hostile_spec_is_read_or_refused_as_a_unit_error(spec: dict[str, Any]) -> None:
    try:
        parsed = parse_unit(unit(spec))
    except UnitError as error:
        assert str(error).startswith(f"{ORIGIN}: Unit/team-a/app: ") and "\n" not in str(error)
        return
    assert ".." not in parsed.path.split("/") and not parsed.path.startswith("/")
