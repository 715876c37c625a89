"""Repository URLs: what may be shown of them, and the login they carry.

A URL such as ``https://user:TOKEN@host/org/repo.git`` carries a secret in its userinfo. gitopsguard
splits it off once, here: git is given the URL without it (the login goes in a header, like a token), and
everything that shows or stores a URL (the banner, errors, status, the audit log, Slack, the inventory)
shows ``display_url(url)``, where the userinfo is ``***``. scp-like addresses (``git@host:org/repo``)
have a user and no password; they are shown as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from gitopsguard.errors import SourceError

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)(.*)$", re.DOTALL)
# In any text: a URL's scheme, then everything up to the last "@" before a space or quote. Greedy on
# purpose: a password with a raw "@" or "/" is hidden whole (a path with an "@" is hidden too: fail closed).
_USERINFO_IN_TEXT = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^\s'\"<>]*@")


@dataclass(frozen=True)
class Login:
    """The userinfo of a URL, percent-decoded as git decodes it, and as it was written."""

    user: str = field(repr=False)
    password: str | None = field(repr=False)
    written: str = field(repr=False)  # the userinfo exactly as in the URL, encoded or not

    def secrets(self, scheme: str) -> tuple[str, ...]:
        """What must never be shown: the password; over http(s) a user alone is a token (``TOKEN@host``)."""
        if self.password:
            return (self.password, self.written)
        if scheme.lower().startswith("http") and self.user:
            return (self.user, self.written)
        return ()


def display_url(url: str) -> str:
    """``url`` with its userinfo shown as ``***``: the one form in which a repository URL is shown or stored.
    Everything from ``://`` to the last ``@`` counts as userinfo, so a password whose ``@`` or ``/`` was not
    percent-encoded is hidden whole."""
    matched = _SCHEME.match(url)
    if not matched:
        written, at, rest = url.rpartition("@")
        return f"***@{rest}" if at and ":" in written else url  # scp-like with a password: fail closed
    if "@" not in matched.group(2):
        return url
    return f"{matched.group(1)}***@{matched.group(2).rpartition('@')[2]}"


def redact_urls(text: str) -> str:
    """``text`` (an error, a status line) with the userinfo of every URL in it shown as ``***``."""
    return _USERINFO_IN_TEXT.sub(r"\1***@", text)


def split_login(url: str) -> tuple[str, Login | None]:
    """(the URL git is given, the login it carried). Over http(s) the whole userinfo is taken out (it goes
    in a header); over ssh and others the user stays and only a password is taken out. A URL with an "@"
    after its host is refused: git and we could read different logins out of it."""
    matched = _SCHEME.match(url)
    if not matched:
        return _split_scp_login(url)
    scheme, rest = matched.groups()
    authority, tail = _authority(rest)
    if "@" in tail:
        raise SourceError(
            f"{display_url(url)}: this URL has an '@' after its host. If it is part of a password or token, "
            "percent-encode '/', '?', '#' and '@' in it (%2F, %3F, %23, %40), or better, give the token in "
            "$GITOPSGUARD_GIT_TOKEN (or the file $GITOPSGUARD_GIT_TOKEN_FILE names) and not in the URL"
        )
    written, at, host = authority.rpartition("@")
    if not at:
        return url, None
    user, colon, password = written.partition(":")
    login = Login(unquote(user), unquote(password) if colon else None, written)
    keep = "" if scheme.lower().startswith("http") or not user else f"{user}@"
    return f"{scheme}{keep}{host}{tail}", login


def _split_scp_login(address: str) -> tuple[str, Login | None]:
    """An scp-like address (``user@host:path``) has a user and no password; one written in anyway
    (``user:pw@host:path``) is taken out, so that it reaches neither git nor its messages."""
    written, at, rest = address.rpartition("@")
    user, colon, password = written.partition(":")
    if not at or not colon:
        return address, None
    return f"{user}@{rest}" if user else rest, Login(user, password, written)


def _authority(rest: str) -> tuple[str, str]:
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    return rest[:end], rest[end:]


def forms(secret: str) -> set[str]:
    """Every form in which ``secret`` may show in git's or a library's text: as given, percent-decoded, and
    percent-encoded (all reserved characters, or all but '/')."""
    decoded = unquote(secret, errors="surrogateescape")
    return {
        secret,
        decoded,
        *(quote(decoded, safe=safe, errors=encoding_errors(decoded)) for safe in ("", "/", "@:/")),
    } - {""}


def encoding_errors(text: str) -> str:
    """How to encode ``text`` as git got it: undecodable bytes of argv come back as they were."""
    try:
        text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return "surrogatepass"
    return "surrogateescape"
