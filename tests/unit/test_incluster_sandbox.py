"""git, ssh, gpg and kustomize work as the shipped Deployment runs them: uid 65532, the root filesystem read-only,
HOME, /tmp and the state folder on empty tmpfs mounts, the environment from manifests/controller.yaml, the key
and known_hosts on read-only mounts with the Secret volumes' modes. A private mount namespace stands in for
the container (no kubelet here); git fetches over ssh from a real sshd, verifies an ssh-signed commit, gpg
imports a key and verifies a signature, and kustomize renders the checkout. Needs root (to make the
namespace) and sshd; skipped with the reason otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path, PurePosixPath

import pytest

from tests.gitrepo import Upstream, git
from tests.sshserver import ssh_server, sshd_missing
from tests.unit.test_manifests_incluster import controller, writable_mounts

UID = 65532
SECRETS = PurePosixPath("/srv")  # where the sandbox mounts the test's "Secret volumes" (an existing, unused dir)

WORK = textwrap.dedent(
    """
    import os, subprocess, sys
    from pathlib import Path
    from gitopsguard.source import Credentials, GitSource, SourceSpec
    from gitopsguard.render.kustomize import build

    url, secrets, state = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    assert not os.access("/", os.W_OK) and os.getuid() == 65532
    known_hosts = Path(os.environ["GITOPSGUARD_SSH_KNOWN_HOSTS"])
    credentials = Credentials(ssh_key_file=secrets / "ssh-key", known_hosts=known_hosts)
    revision = GitSource(SourceSpec(url), state / "source", credentials).fetch(last_applied=None)
    print("fetched", revision.commit)
    verify = ["git", "-C", str(revision.checkout), "-c", "gpg.format=ssh",
              "-c", f"gpg.ssh.allowedSignersFile={secrets / 'allowed_signers'}", "verify-commit", "HEAD"]
    print("verify-commit", subprocess.run(verify, capture_output=True, text=True).stderr.strip())
    subprocess.run(["gpg", "--batch", "--import", str(secrets / "signer.asc")], check=True, capture_output=True)
    done = subprocess.run(["gpg", "--batch", "--verify", str(secrets / "note.sig"), str(secrets / "note")],
                          capture_output=True, text=True)
    print("gpg", done.returncode, "Good signature" in done.stderr)
    print("kustomize", [str(m.key) for m in build(revision.checkout / "apps", revision.checkout)])
    """
)


def sandbox_missing() -> str:
    if os.geteuid() != 0:
        return "needs root to make a private mount namespace with a read-only root"
    for tool in ("unshare", "setpriv", "gpg"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return sshd_missing()


def signed_upstream(root: Path) -> tuple[Upstream, Path]:
    """A repository whose head is signed with an ssh key, and the allowed-signers file trusting that key."""
    upstream = Upstream(root / "git")
    upstream.write("apps/kustomization.yaml", "resources: [settings.yaml]\n")
    upstream.write("apps/settings.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n")
    key = root / "signer"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f", str(key)], check=True)
    git(upstream.work, "add", "-A")
    git(upstream.work, "-c", "gpg.format=ssh", "-c", f"user.signingkey={key}", "commit", "-q", "-S", "-m", "signed")
    git(upstream.work, "push", "-q", "origin", "main")
    allowed = root / "allowed_signers"
    allowed.write_text(f"t@x {Path(f'{key}.pub').read_text()}")
    return upstream, allowed


def gpg_signature(secrets: Path) -> None:
    """An armoured public key (signer.asc) and a detached signature (note.sig) of ``note``, made outside."""
    home = secrets.parent / "gnupg-outside"
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--batch", "--homedir", str(home), "--pinentry-mode", "loopback", "--passphrase", ""]
    subprocess.run([*gpg, "--quick-generate-key", "signer@example.com", "ed25519", "sign", "never"], check=True,
                   capture_output=True)  # fmt: skip
    (secrets / "note").write_text("reviewed\n")
    subprocess.run([*gpg, "--detach-sign", "-o", str(secrets / "note.sig"), str(secrets / "note")], check=True)
    exported = subprocess.run([*gpg, "--armor", "--export"], check=True, capture_output=True).stdout
    (secrets / "signer.asc").write_bytes(exported)
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)


def python_reachable(hold: Path) -> list[str]:
    """Mounts that let uid 65532 run this Python when it is installed under a folder only root may enter
    (pyenv under /root): that folder becomes an empty tmpfs with the installation bound back into it."""
    prefix = Path(sys.base_prefix)
    closed = [p for p in reversed(prefix.parents) if p.stat().st_mode & 0o001 == 0]
    if not closed:
        return []
    hold.mkdir()
    return [f"mount --bind {prefix} {hold}", f"mount -t tmpfs -o mode=0755 tmpfs {closed[0]}", f"mkdir -p {prefix}",
            f"mount --bind {hold} {prefix}"]  # fmt: skip


def container_script(secrets: Path, passwd: Path, hold: Path) -> str:
    """The shell the sandbox runs as root in its own mount namespace before it becomes uid 65532."""
    mounts = ["mount -o remount,bind,ro /", f"mount --bind -o ro {passwd} /etc/passwd",
              f"mount --bind {secrets} {SECRETS}", f"mount -o remount,bind,ro {SECRETS}",
              *python_reachable(hold)]  # fmt: skip
    parents = [path if Path(path).is_dir() else path.parent for path in writable_mounts()]
    keep, put_back = kept_visible([Path(sys.prefix), Path(__file__).parents[2]], parents)
    mounts += keep
    for path, parent in zip(writable_mounts(), parents, strict=True):  # an empty tmpfs at each, as emptyDirs
        mounts.append(f"mount -t tmpfs -o mode=0755 tmpfs {parent}")
        mounts += [f"mkdir -p {path}", f"chown {UID}:{UID} {path}"] if parent != path else [f"chmod 1777 {path}"]
    return " && ".join([*mounts, *put_back])


def kept_visible(paths: list[Path], covered: list[PurePosixPath]) -> tuple[list[str], list[str]]:
    """Mounts that keep this Python's environment and the checkout visible when they lie under a folder the
    sandbox covers with a tmpfs (a CI checkout under /tmp): held on a tmpfs at /mnt first, bound back after."""
    under = [p for p in paths if any(PurePosixPath(p).is_relative_to(c) for c in covered)]
    if not under:
        return [], []
    keep, put_back = ["mount -t tmpfs -o mode=0755 tmpfs /mnt"], []
    for index, path in enumerate(under):
        keep += [f"mkdir -p /mnt/keep{index}", f"mount --bind {path} /mnt/keep{index}"]
        put_back += [f"mkdir -p {path}", f"mount --bind /mnt/keep{index} {path}"]
    return keep, put_back


def environment(python_path: str) -> list[str]:
    _, container = controller()
    pairs = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    pairs |= {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PYTHONPATH": python_path,
              "PYTHONDONTWRITEBYTECODE": "1"}  # fmt: skip
    return [f"{name}={value}" for name, value in pairs.items()]


@pytest.mark.skipif(bool(sandbox_missing()), reason=sandbox_missing() or "can run")
def test_git_ssh_gpg_and_kustomize_work_as_the_shipped_container_runs_them(tmp_path: Path) -> None:
    upstream, allowed = signed_upstream(tmp_path)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    gpg_signature(secrets)
    shutil.copy(allowed, secrets / "allowed_signers")
    passwd = tmp_path / "passwd"
    passwd.write_text(Path("/etc/passwd").read_text() + f"gitopsguard:x:{UID}:{UID}::/home/gitopsguard:/bin/false\n")
    with ssh_server(tmp_path / "sshd") as server:
        shutil.copy(server.client_key, secrets / "ssh-key")
        os.chown(secrets / "ssh-key", 0, UID)
        (secrets / "ssh-key").chmod(0o440)  # as the Secret volume's defaultMode with fsGroup
        (secrets / "known_hosts").write_text(f"{server.host_key_line}\n")
        state = next(m for m in writable_mounts() if str(m).startswith("/var/lib"))
        # the known_hosts Secret is mounted at /srv here; the rest of the environment is the manifest's
        variables = [*environment(str(Path(__file__).parents[2])), f"GITOPSGUARD_SSH_KNOWN_HOSTS={SECRETS}/known_hosts"]
        become = ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups", "env", "-i", *variables]
        work = [*become, sys.executable, "-c", WORK, server.url(upstream.bare), str(SECRETS), str(state)]
        mounts = container_script(secrets, passwd, tmp_path / "python")
        done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", f'{mounts} && exec "$@"',
                               "sandbox", *work], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"fetched {git(upstream.bare, 'rev-parse', 'main')}"
    assert lines[1].startswith('verify-commit Good "git" signature for t@x'), lines
    assert lines[2] == "gpg 0 True", done.stderr
    assert lines[3] == "kustomize ['ConfigMap/settings']", lines
