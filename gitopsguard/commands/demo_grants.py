"""The demo's temporary-access part: alice asks for `view` on shop with a signed commit, carol (a security
reviewer) approves with a signed merge, the binding appears, alice's own credentials work, and at expiry
the binding goes and her access with it."""

from __future__ import annotations

import time
from pathlib import Path

import click
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitopsguard.cluster import connect
from gitopsguard.cluster.rest import RawApi
from gitopsguard.commands.demo_review import DemoPeople, reviewed_change
from gitopsguard.grants.bindings import Binder, install_rbac
from gitopsguard.grants.keeper import GrantKeeper
from gitopsguard.grants.load import load_escalation_policies
from gitopsguard.grants.rbac import grants_rbac
from gitopsguard.grants.signed import SignedMergeVerifier, load_trust
from gitopsguard.grants.store import GrantStore

GRANT_SECONDS = 10  # long enough to show alice's access working, short enough to watch it end
GRANT = """\
apiVersion: gitopsguard.io/v1alpha1
kind: Grant
metadata: {name: alice-demo}
spec:
  policy: debugging
  subject: {kind: User, name: alice}
  role: {kind: ClusterRole, name: view}
  namespace: shop
  duration: {duration}
  reason: "demo: look at the shop pods"
"""


def show_grant(api: client.ApiClient, repo: Path, people: DemoPeople, kubeconfig: Path) -> None:
    install_rbac(api, grants_rbac(load_escalation_policies(repo)))
    keeper = GrantKeeper(Binder(api), GrantStore(RawApi(api)))
    # access/policies/ is in force as carol (an administrator) signed it: the demo repository's first commit
    verifier = SignedMergeVerifier(repo, load_trust(people.trust), people.keys / "verify")
    click.echo(
        f"\nalice asks for `view` on namespace shop for {GRANT_SECONDS} s (a commit signed with her SSH key) ..."
    )
    click.echo(f"    before: alice can list pods in shop? {_alice_can_list(kubeconfig)}")
    request_grant(repo, people)
    click.echo("carol, a security reviewer, merged it with a signed merge commit.")
    for t in keeper.sync(repo, verifier, verifier.blob):
        click.echo(f"    grant {t.grant} {t.event}: {t.detail}")
    click.echo(f"    now: alice can list pods in shop? {_alice_can_list(kubeconfig)}")
    deadline = time.monotonic() + 40
    while keeper.next_expiry() is not None and time.monotonic() < deadline:
        for t in keeper.expire_due():
            click.echo(f"    grant {t.grant} {t.event}: {t.detail}")
        time.sleep(0.2)
    click.echo(f"    after expiry: alice can list pods in shop? {_alice_can_list(kubeconfig)}")


def request_grant(repo: Path, people: DemoPeople) -> str:
    """alice's grant request on a branch, merged by carol with a signed merge; the grant's (and branch's) name."""
    branch = f"alice-demo-{int(time.time())}"  # also the grant's name: expired grants never come back
    grants = repo / "access" / "grants"

    def edit() -> None:
        for old in grants.glob("alice-demo*.yaml"):  # an earlier demo's request, long expired
            old.unlink()
        grant = GRANT.replace("{name: alice-demo}", f"{{name: {branch}}}").replace("{duration}", f"{GRANT_SECONDS}s")
        (grants / f"{branch}.yaml").write_text(grant)

    reviewed_change(people, repo, branch, edit, f"Request view on shop for {GRANT_SECONDS}s")
    return branch


def _alice_can_list(kubeconfig: Path) -> str:
    api = connect(kubeconfig, "dev-alice")
    try:
        client.CoreV1Api(api).list_namespaced_pod("shop")
    except ApiException as error:
        return f"no (HTTP {error.status})"
    finally:
        api.close()  # type: ignore[no-untyped-call]  # the client's own method, unannotated
    return "yes"
