"""Admission judges by the revision the controller last applied, on every replica: a replica that does not
lead follows the unit's inventory and reads that commit's policies from its own clone. A head commit not yet
applied (a bad commit, a policy change still waiting for the gate) is never what admission judges by."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.admission.applied import AppliedPolicies
from gitopsguard.cluster.inventory import Inventory, InventoryStore
from gitopsguard.policy import DenyLevel
from gitopsguard.source import GitSource, SourceSpec
from tests.admissionreview import BASELINE, MAGTAPE
from tests.gitrepo import Upstream

pytestmark = pytest.mark.integration


def test_a_follower_judges_by_the_applied_commit_not_the_branch_head(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    upstream = Upstream(tmp_path / "git")
    upstream.write("policies/pss.yaml", BASELINE)
    applied_commit = upstream.commit()
    upstream.remove("policies/pss.yaml")
    upstream.write("policies/magtape.yaml", MAGTAPE)
    head = upstream.commit("drops pod security: not applied yet")
    store = InventoryStore(admin_api, namespace=namespace)  # the test's own namespace stands in for gitopsguard-system
    source = GitSource(SourceSpec(upstream.url, "main"), tmp_path / "admission")
    applied = AppliedPolicies(DenyLevel.MED)

    applied.follow_once(store, source, "shop", "policies")
    assert applied.get() is None  # nothing applied: admission denies until there is (fail closed)

    store.save("shop", Inventory(last_applied=applied_commit))
    applied.follow_once(store, source, "shop", "policies")
    judgement = applied.get()
    assert judgement is not None and judgement.revision == applied_commit
    assert [p.name for p in judgement.policies.policies] == ["pod-security"]
    assert judgement.deny_level is DenyLevel.MED

    store.save("shop", Inventory(last_applied=head))
    applied.follow_once(store, source, "shop", "policies")
    judgement = applied.get()
    assert judgement is not None and [p.name for p in judgement.policies.policies] == ["magtape"]
