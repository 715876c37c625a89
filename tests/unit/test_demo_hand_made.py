"""`make demo`'s hand-made Deployment (``demo_incluster_story.show_hand_made``), judged by the demo repository's
policies as the webhook and the live scan judge it in namespace shop (no cluster).

Since issue 19 admission judges namespace shop by Unit shop's own policies too, and the story's one hand-made
Deployment, which wrote to its root file system, was refused at admission: the live scan's backup and deletion,
which the README's demo promises, were no longer shown. The story now makes it twice: as before (refused by
shop's own policy alone), then with a read-only root, which passes every policy at the controller's deny level
yet lacks the team label that the live scan removes it for."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from gitopsguard.commands.demo_incluster_story import hand_made
from gitopsguard.gate import policies_at
from gitopsguard.model import Manifest, ObjectKey
from gitopsguard.policy import DenyLevel, evaluate
from gitopsguard.policy.evaluate import Evaluation
from gitopsguard.render import render

TEMPLATE = Path(__file__).parents[2] / "repo-template"
CONTROLLER_DENY_LEVEL = DenyLevel.LOW  # manifests/controller.yaml: GITOPSGUARD_DENY_LEVEL
NOW = datetime(2026, 12, 6, tzinfo=UTC)


def _judged(*, read_only_root: bool) -> Evaluation:
    body = hand_made(read_only_root=read_only_root)
    body["metadata"]["namespace"] = "shop"  # the API server's, from the URL
    namespaces = {m.key.name: m.body for m in render(TEMPLATE, "clusters/dev-units").manifests
                  if m.key.kind == "Namespace"}  # fmt: skip
    policies = policies_at(TEMPLATE, "policies", own="apps/shop/policies", unit="shop.shop")
    manifest = Manifest(ObjectKey.of(body), body, "kubectl create (by hand)")
    return evaluate([manifest], policies, now=NOW, deny_level=CONTROLLER_DENY_LEVEL, namespaces=namespaces)


def test_the_first_hand_made_deployment_is_refused_by_shops_own_policy_alone() -> None:
    judged = _judged(read_only_root=False)
    assert [[f.policy for f in judged.blocking(r)] for r in judged.blocked] == [["shop.shop/read-only-root"]]


def test_the_second_hand_made_deployment_is_admitted_and_still_lacks_the_team_label_the_live_scan_removes() -> None:
    judged = _judged(read_only_root=True)
    assert judged.blocked == ()
    (result,) = judged.results
    assert "hand-made-workloads" in {f.policy for f in result.findings}
