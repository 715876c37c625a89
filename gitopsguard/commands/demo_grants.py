"""The demo's temporary-access part: alice asks for `view` on shop with a signed commit, carol (a security
reviewer) approves with a signed merge, the binding appears, alice's own credentials work, and at expiry
the binding goes and her access with it."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import click
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitopsguard.cluster import connect
from gitopsguard.cluster.rest import RawApi
from gitopsguard.grants.bindings import Binder, install_rbac
from gitopsguard.grants.keeper import GrantKeeper
from gitopsguard.grants.load import load_escalation_policies
from gitopsguard.grants.rbac import grants_rbac
from gitopsguard.grants.signed import SignedMergeVerifier, load_trust
from gitopsguard.grants.store import GrantStore

PEOPLE = {"alice": ["team-shop"], "carol": ["security-reviewers"]}
GRANT = """\
apiVersion: gitopsguard.io/v1alpha1
kind: Grant
metadata: {name: alice-demo}
spec:
  policy: debugging
  subject: {kind: User, name: alice}
  role: {kind: ClusterRole, name: view}
  namespace: shop
  duration: 15s
  reason: "demo: look at the shop pods"
"""


def show_grant(api: client.ApiClient, repo: Path, state: Path, kubeconfig: Path) -> None:
    trust = _keys_and_trust(state / "demo-keys")
    install_rbac(api, grants_rbac(load_escalation_policies(repo)))
    keeper = GrantKeeper(Binder(api), GrantStore(RawApi(api)))
    verifier = SignedMergeVerifier(repo, load_trust(trust), state / "demo-keys" / "verify")
    policy = repo / "access" / "policies" / "debugging.yaml"  # policies count once an administrator signs them
    policy.write_text(policy.read_text().rstrip("\n") + f"\n# approved by carol ({int(time.time())})\n")
    _git(repo, state, "carol", "commit", "-q", "-S", "-am", "Approve the debugging escalation policy")
    click.echo("\nalice asks for `view` on namespace shop for 15 s (a commit signed with her SSH key) ...")
    click.echo(f"    before: alice can list pods in shop? {_alice_can_list(kubeconfig)}")
    branch = f"alice-demo-{int(time.time())}"  # also the grant's name: expired grants never come back
    _git(repo, state, "alice", "checkout", "-q", "-b", branch)
    grants = repo / "access" / "grants"
    for old in grants.glob("alice-demo*.yaml"):  # an earlier demo's request, long expired
        old.unlink()
    (grants / f"{branch}.yaml").write_text(GRANT.replace("{name: alice-demo}", f"{{name: {branch}}}"))
    _git(repo, state, "alice", "add", "-A")
    _git(repo, state, "alice", "commit", "-q", "-S", "-m", "Request view on shop for 15s")
    _git(repo, state, "carol", "checkout", "-q", "main")
    _git(repo, state, "carol", "merge", "-q", "--no-ff", "-S", "-m", f"Merge {branch} (reviewed)", branch)
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


def _keys_and_trust(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    signers = []
    for person, groups in PEOPLE.items():
        key = folder / person
        if not key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", person, "-f", str(key)], check=True)
        signers.append({"user": person, "groups": groups, "keys": [(folder / f"{person}.pub").read_text().strip()]})
    trust = folder / "trust.yaml"
    trust.write_text(yaml.safe_dump({"administrators": ["carol"], "signers": signers}))
    return trust


def _git(repo: Path, state: Path, person: str, *args: str) -> None:
    config = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={state / 'demo-keys' / person}",
              "-c", f"user.name={person}", "-c", f"user.email={person}@example.com"]  # fmt: skip
    subprocess.run(["git", *config, *args], cwd=repo, check=True, capture_output=True)


def _alice_can_list(kubeconfig: Path) -> str:
    api = connect(kubeconfig, "dev-alice")
    try:
        client.CoreV1Api(api).list_namespaced_pod("shop")
    except ApiException as error:
        return f"no (HTTP {error.status})"
    finally:
        api.close()  # type: ignore[no-untyped-call]  # the client's own method, unannotated
    return "yes"
