"""A real git repository where each person signs with their own SSH key (made by ssh-keygen), for the
signed-merge approval tests. The trust configuration maps those keys to Kubernetes identities."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import yaml

PEOPLE = {"alice": ["team-shop"], "bob": ["team-payments"], "carol": ["security-reviewers"]}

ESCALATION_POLICY = """\
apiVersion: gitopsguard.io/v1alpha1
kind: EscalationPolicy
metadata: {name: debug}
spec:
  requesters: {groups: [team-shop]}
  approvers: {users: [bob]}
  roles:
    - {kind: ClusterRole, name: view, namespaces: [NAMESPACE]}
  maxDuration: 2h
  reasonRequired: true
"""


def grant(name: str, namespace: str, duration: str = "1h", user: str = "alice") -> str:
    return textwrap.dedent(f"""\
        apiVersion: gitopsguard.io/v1alpha1
        kind: Grant
        metadata: {{name: {name}}}
        spec:
          policy: debug
          subject: {{kind: User, name: {user}}}
          role: {{kind: ClusterRole, name: view}}
          namespace: {namespace}
          duration: {duration}
          reason: "debug the checkout failures (INC-7)"
        """)


class SignedRepo:
    def __init__(self, root: Path, namespace: str) -> None:
        self.root, self.work, self.keys = root, root / "repo", root / "keys"
        self.keys.mkdir(parents=True)
        for person in [*PEOPLE, "mallory"]:
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", person, "-f", str(self.keys / person)],
                           check=True)  # fmt: skip
        self.trust = root / "trust.yaml"
        self.trust.write_text(yaml.safe_dump({"administrators": ["carol"], "signers": [
            {"user": p, "groups": g, "keys": [(self.keys / f"{p}.pub").read_text().strip()]} for p, g in PEOPLE.items()
        ]}))  # fmt: skip
        self.work.mkdir()
        self.git("init", "-q", "-b", "main")
        self.write("access/policies/debug.yaml", ESCALATION_POLICY.replace("NAMESPACE", namespace))
        self.commit("carol", "Escalation policy for debugging")

    def git(self, *args: str, person: str = "carol") -> str:
        email = f"{person}@example.com"
        env = {"GIT_AUTHOR_NAME": person, "GIT_AUTHOR_EMAIL": email, "GIT_COMMITTER_NAME": person,
               "GIT_COMMITTER_EMAIL": email, "HOME": str(self.root), "PATH": "/usr/bin:/bin"}  # fmt: skip
        signing = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={self.keys / person}"]
        done = subprocess.run(["git", *signing, *args], cwd=self.work, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def write(self, relative: str, text: str) -> None:
        path = self.work / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def commit(self, person: str, message: str, *, signed: bool = True) -> str:
        self.git("add", "-A", person=person)
        self.git("commit", "-q", *(["-S"] if signed else []), "-m", message, person=person)
        return self.git("rev-parse", "HEAD")

    def request(self, person: str, branch: str, path: str, text: str, *, signed: bool = True) -> None:
        """``person`` writes a grant on a new branch from main and commits it."""
        self.git("checkout", "-q", "-b", branch, "main", person=person)
        self.write(path, text)
        self.commit(person, f"Request {path}", signed=signed)
        self.git("checkout", "-q", "main", person=person)

    def merge(self, person: str, branch: str, *, signed: bool = True) -> str:
        """``person`` merges the branch into main with a merge commit (the approval)."""
        self.git("merge", "-q", "--no-ff", *(["-S"] if signed else []), "-m", f"Merge {branch}", branch,
                 person=person)  # fmt: skip
        return self.git("rev-parse", "HEAD")

    def blob_of(self, path: str) -> str:
        return self.git("rev-parse", f"HEAD:{path}")
