"""A real OpenSSH server for tests: Debian's ``sshd`` on loopback, on a free port, with its own host key,
configuration and authorized key, run as whoever runs the tests (root or not), serving git over ssh."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"


def sshd_missing() -> str:
    """Why no sshd can run here ("" when it can)."""
    if not Path(SSHD).is_file() or shutil.which("ssh-keygen") is None:
        return f"{SSHD} or ssh-keygen is not installed (Debian: apt-get install openssh-server openssh-client)"
    return ""


@dataclass(frozen=True)
class SshServer:
    port: int
    host_key_line: str  # "[127.0.0.1]:PORT <type> <key>", as a known_hosts line
    client_key: Path
    user: str

    def url(self, repository: Path) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{repository}"


def keygen(path: Path, comment: str) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True)
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _config(root: Path, port: int, host_key: Path, authorized: Path, user: str) -> Path:
    config = root / "sshd_config"
    config.write_text("\n".join([
        "ListenAddress 127.0.0.1", f"Port {port}", f"HostKey {host_key}", f"PidFile {root / 'sshd.pid'}",
        f"AuthorizedKeysFile {authorized}", "StrictModes no", "UsePAM no", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "PubkeyAuthentication yes", f"AllowUsers {user}",
        "PermitRootLogin prohibit-password", "LogLevel VERBOSE", "",
    ]))  # fmt: skip
    return config


@contextmanager
def ssh_server(root: Path) -> Iterator[SshServer]:
    """An sshd for the current user on 127.0.0.1, stopped afterwards."""
    root.mkdir(parents=True, exist_ok=True)
    user = getpass.getuser()
    host_key, client_key = keygen(root / "host_key", "host"), keygen(root / "client_key", "client")
    authorized = root / "authorized_keys"
    authorized.write_text(Path(f"{client_key}.pub").read_text())
    port = _free_port()
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory, as root
    config = _config(root, port, host_key, authorized, user)
    log = (root / "sshd.log").open("w")
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_listening(port, process, root / "sshd.log")
        line = f"[127.0.0.1]:{port} " + " ".join(Path(f"{host_key}.pub").read_text().split()[:2])
        yield SshServer(port, line, client_key, user)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited at start: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"sshd did not listen on {port}: {log.read_text()}")
