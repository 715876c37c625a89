"""repo-template/'s shop Unit has policies of its own (``policiesPath: apps/shop/policies``): they are in shop's
folder, load, only add to the platform's, and shop's folder passes them; a shop Deployment that would write to
its root file system is denied by them alone (issue 19)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path

from gitopsguard.gate import policies_at
from gitopsguard.model import Manifest
from gitopsguard.policy import DenyLevel, evaluate
from gitopsguard.render import render
from gitopsguard.units import UnitRef
from gitopsguard.units.policies_path import misplaced_policies
from gitopsguard.units.root import Root, units_of_root

TEMPLATE = Path(__file__).parents[2] / "repo-template"
ROOT = Root("clusters/dev-units", "dev-units")
SHOP = UnitRef("shop", "shop")
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _shop() -> tuple[str, tuple[Manifest, ...]]:
    specs = units_of_root(ROOT, render(TEMPLATE, ROOT.path).manifests).units
    assert misplaced_policies(ROOT.path, "policies", specs) == {}
    shop = next(s for s in specs if s.ref == SHOP)
    assert shop.policies_path == "apps/shop/policies"
    manifests = tuple(m for m in render(TEMPLATE, shop.path).manifests if m.key.kind != "Namespace")
    return shop.policies_path, tuple(_placed(m, "shop") for m in manifests)


def _placed(manifest: Manifest, namespace: str) -> Manifest:
    body = copy.deepcopy(manifest.body)
    body.setdefault("metadata", {}).setdefault("namespace", namespace)
    return Manifest(manifest.key, body, manifest.origin)


def test_shops_folder_passes_the_platforms_policies_and_its_own() -> None:
    own, manifests = _shop()
    policies = policies_at(TEMPLATE, "policies", own=own, unit="shop.shop")
    assert "shop.shop/read-only-root" in {p.name for p in policies.policies}
    assert not evaluate(manifests, policies, now=NOW, deny_level=DenyLevel.LOW).blocked


def test_a_shop_deployment_writing_to_its_root_file_system_is_denied_by_shops_policy_alone() -> None:
    own, manifests = _shop()
    writable = []
    for manifest in manifests:
        body = copy.deepcopy(manifest.body)
        if manifest.key.kind == "Deployment":
            body["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
        writable.append(Manifest(manifest.key, body, manifest.origin))
    platform = evaluate(writable, policies_at(TEMPLATE, "policies"), now=NOW, deny_level=DenyLevel.LOW)
    assert not platform.blocked
    both = evaluate(writable, policies_at(TEMPLATE, "policies", own=own, unit="shop.shop"), now=NOW,
                    deny_level=DenyLevel.LOW)  # fmt: skip
    assert [(r.key.kind, [f.policy for f in both.blocking(r)]) for r in both.blocked] == [
        ("Deployment", ["shop.shop/read-only-root"])
    ]
