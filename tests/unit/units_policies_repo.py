"""A repository for the tests of every Unit's own policies at admission (issue 19): the root path ``root``
declares Unit ``shop/app`` (folder ``shop``, own policies ``shop-policies``, a Pod rule: read-only root file
system) and Unit ``web/app`` (folder ``web``, none of its own); the platform's ``policies/`` hold Pod
Security baseline. Shared by the unit and integration tests of the feature."""

from __future__ import annotations

import copy
from typing import Any

from gitopsguard.reconcile import Unit
from tests.admissionreview import BASELINE
from tests.gitrepo import Upstream
from tests.unit.policy.workloads import as_pod, compliant_spec

API = "apiVersion: gitopsguard.io/v1alpha1\n"
READ_ONLY_ROOT = (
    API
    + """kind: Policy
metadata: {name: read-only-root-pods}
spec:
  code: SHOP002
  severity: HIGH
  enforcement: enforce
  match: {kinds: [Pod]}
  validations:
    - expression: >-
        object.spec.containers.all(c, has(c.securityContext)
        && has(c.securityContext.readOnlyRootFilesystem) && c.securityContext.readOnlyRootFilesystem == true)
      message: shop's containers run with a read-only root file system
      path: spec.containers[*].securityContext.readOnlyRootFilesystem
"""
)
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: {namespace}}}\ndata: {{a: b}}\n"


def units(shop: str, web: str, *, policies: str = "shop-policies", unit_namespace: str = "") -> str:
    """The root path's Units: ``app`` in ``shop`` and ``app`` in ``web`` (or both in ``unit_namespace``, aimed
    at ``shop`` and ``web`` by targetNamespace)."""
    found = []
    for name, target, extra in (("shop", shop, f", policiesPath: {policies}"), ("web", web, "")):
        where = unit_namespace or target
        metadata = f"{{name: {'app' if not unit_namespace else name}, namespace: {where}}}"
        aim = f", targetNamespace: {target}" if unit_namespace else ""
        found.append(f"{API}kind: Unit\nmetadata: {metadata}\nspec: {{path: {name}{extra}{aim}}}\n")
    return "---\n".join(found)


def repository(upstream: Upstream, shop: str, web: str, *, unit_namespace: str = "") -> str:
    """The first commit (each Unit's folder holds one ConfigMap); its sha."""
    upstream.write("root/units.yaml", units(shop, web, unit_namespace=unit_namespace))
    upstream.write("policies/pss.yaml", BASELINE)
    upstream.write("shop-policies/read-only-root.yaml", READ_ONLY_ROOT)
    upstream.write("shop/cm.yaml", CONFIGMAP.format(name="shop", namespace=shop))
    upstream.write("web/cm.yaml", CONFIGMAP.format(name="web", namespace=web))
    return upstream.commit()


def root_unit(name: str = "root", namespace: str = "default") -> Unit:
    return Unit(name, "root", namespace, policies_path="policies")


def settings(root: Unit, path: str, namespace: str, own: str | None) -> str:
    """What a Unit's inventory records as ``appliedAs`` for a pass of ``path`` into ``namespace`` with ``own``
    policies (``reconcile.Unit.settings``, as the loop's ``unit_of`` makes the Unit)."""
    return Unit("x", path, namespace, policies_path=root.policies_path, own_policies_path=own).settings


def pod(namespace: str, *, read_only: bool) -> dict[str, Any]:
    """A Pod the platform's baseline admits, with or without a read-only root file system."""
    spec = compliant_spec()
    container = copy.deepcopy(spec["containers"][0])
    container["securityContext"]["readOnlyRootFilesystem"] = read_only
    spec["containers"] = [container]
    body = as_pod(spec)
    body["metadata"] = {"name": f"p-{'ro' if read_only else 'rw'}", "namespace": namespace}
    return body
