"""Connecting from inside a Pod: the API server from ``KUBERNETES_SERVICE_HOST/PORT``, trusted by the mounted CA,
and the Pod's service-account token, read again whenever the kubelet rewrites it.

Bound tokens expire (an hour by default); the kubelet writes a new one into the mounted file at 80% of its
life, and a deleted bound object (or Secret) revokes a token at once. A client that keeps the token it read
at start stops working. The kubernetes client's own loader re-reads the file only once a minute, and keeps
the token under ``BearerToken`` alone; here the file is read again as soon as it changed (its inode, size or
time: the kubelet swaps a symbolic link), and the header is kept under ``authorization`` too, so every path
that asks ``configuration.get_api_key_with_prefix("authorization")`` (or ``auth_settings()``) per request
sends the current token: the direct transport, urllib3's watches and the kubernetes client's ApiClient.
"""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from kubernetes import client
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.incluster_config import InClusterConfigLoader

from gitopsguard.errors import ClusterError

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DIR_VARIABLE = "GITOPSGUARD_SERVICE_ACCOUNT_DIR"  # another place for the token and CA (tests, unusual mounts)
HOST_VARIABLES = ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")
MAX_TOKEN = 64 * 1024  # bound tokens are about 1 KiB; a larger file is not a token
REREAD_SECONDS = 60.0  # read again at least this often, even when the file looks unchanged
ACCOUNT_USER = re.compile(r"system:serviceaccount:[a-z0-9][a-z0-9.-]{0,252}:[a-z0-9][a-z0-9.-]{0,252}")


def in_a_pod(environ: Mapping[str, str]) -> bool:
    """Whether the environment names an API server the way the kubelet does for a Pod."""
    return all(environ.get(name) for name in HOST_VARIABLES)


def account_dir(environ: Mapping[str, str]) -> Path:
    return Path(environ.get(DIR_VARIABLE) or SERVICE_ACCOUNT_DIR)


class TokenFile:
    """The token in one file, as an Authorization header; read again once the file changed. A file that
    becomes unreadable, empty or malformed keeps the last good token (the API server still decides whether
    it is valid) and is read again on the next request."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int, int] | None = None
        self._read_at = 0.0
        self._header = ""

    def header(self) -> str:
        """``Bearer <token>``, as the file holds it now; ClusterError when it never held a usable token."""
        with self._lock:
            stamp = self._current_stamp()
            if stamp != self._stamp or time.monotonic() - self._read_at > REREAD_SECONDS or not self._header:
                self._reread(stamp)
            if not self._header:
                raise ClusterError(
                    f"{self.path}: no usable service-account token (missing, empty, over {MAX_TOKEN} bytes or not "
                    "printable ASCII); mount the Pod's token (automountServiceAccountToken) or give --kubeconfig"
                )
            return self._header

    def _current_stamp(self) -> tuple[int, int, int, int] | None:
        try:
            found = self.path.stat()  # follows the kubelet's ..data link: a new token is a new inode
        except OSError:
            return None
        return (found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns)

    def _reread(self, stamp: tuple[int, int, int, int] | None) -> None:
        token = read_token(self.path)
        self._read_at = time.monotonic()
        if token is not None:
            self._header, self._stamp = f"Bearer {token}", stamp

    def refresh(self, configuration: client.Configuration) -> None:
        """The kubernetes client's ``refresh_api_key_hook``: called before every credential is read."""
        header = self.header()
        configuration.api_key["authorization"] = header
        configuration.api_key["BearerToken"] = header  # ``auth_settings`` prefers this key to the alias


def read_token(path: Path) -> str | None:
    """The token the file holds, or None when it holds none that could be sent: a token with a line break
    or other control character would add headers of its own to every request."""
    try:
        # non-blocking, regular files only: a FIFO or device in its place must not hang every request
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as file:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return None
        data = file.read(MAX_TOKEN + 1)
    token = data.strip()
    if not token or len(data) > MAX_TOKEN or any(byte < 0x21 or byte > 0x7E for byte in token):
        return None
    return token.decode("ascii")


def incluster_configuration(environ: Mapping[str, str]) -> client.Configuration:
    """The configuration of a client inside a Pod, with the token refreshed as above."""
    folder = account_dir(environ)
    token, ca = folder / "token", folder / "ca.crt"
    configuration = client.Configuration()
    try:
        loader = InClusterConfigLoader(  # type: ignore[no-untyped-call]
            str(token), str(ca), try_refresh_token=False, environ=environ
        )
        loader.load_and_set(configuration)  # type: ignore[no-untyped-call]
    except (ConfigException, OSError, UnicodeDecodeError) as error:
        raise ClusterError(
            f"{folder}: cannot use the Pod's service account ({error}); mount its token and ca.crt there "
            f"(automountServiceAccountToken, or ${DIR_VARIABLE}), or give --kubeconfig"
        ) from error
    tokens = TokenFile(token)
    tokens.refresh(configuration)  # fails now, at start, when the token cannot be used
    configuration.api_key_prefix.clear()  # the header carries its scheme
    configuration.refresh_api_key_hook = tokens.refresh  # type: ignore[assignment]  # typed as None in the client
    return configuration


def token_user(configuration: client.Configuration) -> str | None:
    """The user name the API server knows this client by, when the client sends a Pod's service-account token
    (``system:serviceaccount:NAMESPACE:NAME``, the token's subject); None for any other client or token.

    Replicas of one Deployment share this name; the admission webhook admits its own controller's writes by it
    (``admission/server.py``), where a probe each process sends through the Service would reach another replica.
    The token is the one the kubelet mounted for us: its subject is read, not verified (the API server does)."""
    tokens = getattr(configuration.refresh_api_key_hook, "__self__", None)
    if not isinstance(tokens, TokenFile):
        return None
    token = read_token(tokens.path)
    parts = token.split(".") if token else []
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    subject = claims.get("sub") if isinstance(claims, dict) else None
    return subject if isinstance(subject, str) and ACCOUNT_USER.fullmatch(subject) else None
