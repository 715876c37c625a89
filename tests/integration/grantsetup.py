"""What the keeper's integration tests share: a signed repository, a keeper on the real API server with a
clock the test moves, and questions the real authorizer answers (can this user do that, now?)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from gitopsguard.cluster.rest import RawApi
from gitopsguard.grants.bindings import Binder, install_rbac
from gitopsguard.grants.keeper import GrantKeeper
from gitopsguard.grants.load import load_escalation_policies
from gitopsguard.grants.rbac import grants_rbac
from gitopsguard.grants.signed import SignedMergeVerifier, load_trust
from gitopsguard.grants.store import GrantStore
from tests.kube import as_model
from tests.signedrepo import SignedRepo


class Clock:
    """The controller's clock, which a test may move forward."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def keeper_for(admin_api: client.ApiClient, namespace: str, clock: Clock) -> GrantKeeper:
    """A keeper whose state ConfigMap lives in the test's namespace; a second call is a restart."""
    return GrantKeeper(Binder(admin_api), GrantStore(RawApi(admin_api), namespace), clock=clock)


@pytest.fixture
def signed(admin_api: client.ApiClient, namespace: str, tmp_path: Path) -> Iterator[tuple[SignedRepo, Clock]]:
    repo = SignedRepo(tmp_path, namespace)
    install_rbac(admin_api, grants_rbac(load_escalation_policies(repo.work)))
    yield repo, Clock()


def sync(repo: SignedRepo, keeper: GrantKeeper) -> list[str]:
    verifier = SignedMergeVerifier(repo.work, load_trust(repo.trust), repo.root / "state")
    return [f"{t.event}: {t.detail}" for t in keeper.sync(repo.work, verifier, repo.blob_of)]


def allowed(api: client.ApiClient, user: str, verb: str, resource: str, namespace: str = "") -> bool:
    """The real authorizer's answer (SubjectAccessReview) for ``user``, as RBAC stands now."""
    attributes: dict[str, Any] = {"verb": verb, "resource": resource}
    if namespace:
        attributes["namespace"] = namespace
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
              "spec": {"user": user, "resourceAttributes": attributes}}  # fmt: skip
    answer = client.AuthorizationV1Api(api).create_subject_access_review(as_model(client.V1SubjectAccessReview, review))
    assert answer.status is not None, "the SubjectAccessReview came back without a status"
    return bool(answer.status.allowed)


def settles(api: client.ApiClient, user: str, verb: str, resource: str, namespace: str = "") -> bool:
    """The authorizer's answer once its RBAC cache has caught up with a change just made (a watch away)."""
    deadline = time.monotonic() + 5
    answer = allowed(api, user, verb, resource, namespace)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        again = allowed(api, user, verb, resource, namespace)
        if again == answer:
            return answer
        answer = again
    return answer
