"""Git over SSH verifies the server against the operator's ``known_hosts``, and nothing else.

Without verified host keys, whoever can answer for the Git server's address (DNS, the network between the
Pod and the forge) serves the commits the cluster applies; ``accept-new`` trusts whatever answers first,
and a Pod with an emptyDir HOME starts afresh on every restart, so it would trust on every restart. Hence:
an ssh URL needs ``--ssh-known-hosts FILE``; git's ssh always runs with ``StrictHostKeyChecking=yes``, that
file as the only known hosts (``GlobalKnownHostsFile=/dev/null``, so no key someone left in ~/.ssh or
/etc/ssh counts), and never writes to it. Even a URL this module does not take for ssh (git has more
spellings) goes through the same command, with no known hosts at all when none was given: refused.

Paths reach ssh through two parsers: the shell that runs GIT_SSH_COMMAND (``shlex.quote``) and ssh's own
(``-o`` values are split on spaces and quotes, then ``%`` tokens and ``${VAR}`` are expanded in file names).
A path is written so that both read it back as given; one holding what ssh cannot read literally (``${``,
a double quote, a backslash, a control character) is refused with its name.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from gitopsguard.errors import SourceError

_SSH_SCHEMES = ("ssh", "git+ssh", "ssh+git")
_UNSAFE = re.compile(r'["\\\x00-\x1f\x7f]|\$\{')
OPTION = "--ssh-known-hosts"


def is_ssh(url: str) -> bool:
    """Whether git reaches ``url`` over ssh: an ssh scheme, or scp-like ``[user@]host:path`` (a colon
    before any slash, as git's ``url_is_local_not_ssh`` reads it), but not ``helper::address``."""
    scheme, separator, _ = url.partition("://")
    if separator:
        return scheme.lower() in _SSH_SCHEMES
    colon, slash = url.find(":"), url.find("/")
    if colon <= 0 or url[colon:].startswith("::"):
        return False
    return slash < 0 or colon < slash


def for_ssh(path: Path, what: str) -> str:
    """``path`` as ssh reads file names literally: absolute (not resolved: a mounted ConfigMap's link must
    keep following its updates), ``%`` doubled; SourceError when ssh could not read it as given."""
    text = str(path.absolute())
    if _UNSAFE.search(text):
        raise SourceError(f"{text}: the {what} path holds '${{', a quote, a backslash or a control character, "
                          "which ssh would read as something else; use a plain path")  # fmt: skip
    return text.replace("%", "%%")


def ssh_command(key_file: Path | None, known_hosts: Path | None) -> str:
    """GIT_SSH_COMMAND: batch mode, host keys strictly from ``known_hosts`` (none given: no host is known)."""
    hosts = f'"{for_ssh(known_hosts, "known_hosts")}"' if known_hosts is not None else "/dev/null"
    words = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={hosts}",
             "-o", "GlobalKnownHostsFile=/dev/null", "-o", "UpdateHostKeys=no", "-o", "CheckHostIP=no",
             "-o", "VerifyHostKeyDNS=no", "-o", "KnownHostsCommand=none"]  # fmt: skip
    if key_file is not None:
        # -o, not -i: ssh checks an -i path before it undoes the %% escape, and would drop the key
        words += ["-o", f'IdentityFile="{for_ssh(key_file, "ssh key")}"', "-o", "IdentitiesOnly=yes"]
    return " ".join(shlex.quote(word) for word in words)


def require_known_hosts(url: str, shown: str, known_hosts: Path | None) -> None:
    """SourceError unless an ssh ``url`` comes with a readable known_hosts file (``shown``: the URL as shown)."""
    if not is_ssh(url):
        return
    if known_hosts is None:
        raise SourceError(
            f"{shown}: git over ssh needs the server's host keys: give {OPTION} FILE (or "
            "$GITOPSGUARD_SSH_KNOWN_HOSTS), a known_hosts file holding them, e.g. from `ssh-keyscan HOST` checked "
            "against the keys your Git host publishes; unknown hosts are never accepted"
        )
    for_ssh(known_hosts, "known_hosts")
    if not os.access(known_hosts, os.R_OK) or not known_hosts.is_file():
        raise SourceError(f"{known_hosts}: the known_hosts file for {shown} cannot be read; mount it there (a "
                          f"ConfigMap or Secret) or give another with {OPTION}")  # fmt: skip
