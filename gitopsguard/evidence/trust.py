"""The operator's trust configuration (outside the repository): who holds which signing key or GitHub login,
the groups each person is in, and who the administrators are (they alone approve escalation policies)::

    administrators: [carol]         # users below whose signed merges may change access/policies/
    signers:
      - user: alice               # the Kubernetes user name
        groups: [team-shop]
        keys: ["ssh-ed25519 AAAA..."]
        gpgKeys: ["-----BEGIN PGP PUBLIC KEY BLOCK----- ..."]   # and/or OpenPGP keys
        github: alice-gh          # optional, for the github approval mode
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gitopsguard.errors import GitOpsGuardError
from gitopsguard.evidence.identity import Identity

MAX_TRUST_BYTES = 4 * 1024 * 1024  # room for thousands of people with OpenPGP keys
MAX_FIELD = 16 * 1024  # an armoured OpenPGP key is a few KiB
_KEY_TYPE = re.compile(r"(ssh|ecdsa|sk)-[a-z0-9@.-]{1,64}")
_BASE64 = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")
_PRINCIPAL = re.compile(r"[^\s,\"'*?!\\\x00-\x1f\x7f]{1,253}")


@dataclass(frozen=True)
class TrustedSigner:
    identity: Identity
    keys: tuple[str, ...]  # "ssh-ed25519 AAAA..." public keys
    github: str = ""  # their GitHub login, for the github approval mode
    gpg_keys: tuple[str, ...] = ()  # ASCII-armoured OpenPGP public keys
    admin: bool = False  # named in `administrators`: may approve changes to escalation policies


def github_logins(signers: tuple[TrustedSigner, ...]) -> dict[str, Identity]:
    return {s.github: s.identity for s in signers if s.github}


def load_trust(path: Path) -> tuple[TrustedSigner, ...]:
    """Every signer in the trust file; GitOpsGuardError naming the file and the entry at fault otherwise."""
    data = document(path)
    if not isinstance(data, dict):
        raise GitOpsGuardError(f"{path}: the trust configuration must be a mapping with `signers`")
    admins = _texts(data.get("administrators"), f"{path}: administrators")
    entries = data.get("signers") or []
    if not isinstance(entries, list):
        raise GitOpsGuardError(f"{path}: signers must be a list")
    signers = tuple(_signer(entry, f"{path}: signers[{index}]", admins) for index, entry in enumerate(entries))
    _one_holder_per_key(signers, path)
    unknown = sorted(admins - {s.identity.user for s in signers})
    if unknown:
        raise GitOpsGuardError(f"{path}: administrators names {', '.join(unknown)}, who is not among the signers")
    return signers


def _one_holder_per_key(signers: tuple[TrustedSigner, ...], path: Path) -> None:
    """A key names one person: listed under two, git would attribute its signatures to whichever comes first."""
    holders: dict[str, str] = {}
    for signer in signers:
        for key in (*signer.keys, *(k.strip() for k in signer.gpg_keys)):
            held = holders.setdefault(key, signer.identity.user)
            if held != signer.identity.user:
                raise GitOpsGuardError(f"{path}: the key {key[:40]}... is listed under both {held} and "
                                       f"{signer.identity.user}; a key must name one person")  # fmt: skip


def document(path: Path) -> Any:
    """The trust file's YAML, bounded in size. The one place it is parsed (switch to a bounded loader here)."""
    try:
        if path.stat().st_size > MAX_TRUST_BYTES:
            raise GitOpsGuardError(f"{path}: larger than {MAX_TRUST_BYTES} bytes; is this the trust configuration?")
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as error:
        raise GitOpsGuardError(f"{path}: cannot read the trust configuration: {type(error).__name__}: "
                               f"{str(error)[:300]}") from error  # fmt: skip


def _signer(entry: Any, where: str, admins: frozenset[str]) -> TrustedSigner:
    if not isinstance(entry, dict):
        raise GitOpsGuardError(f"{where}: must be a mapping with `user`, and `keys`, `gpgKeys` or a `github` login")
    user, github = _text(entry.get("user"), f"{where}.user"), _text(entry.get("github") or "", f"{where}.github")
    keys = tuple(_ssh_key(k, f"{where}.keys") for k in sorted(_texts(entry.get("keys"), f"{where}.keys")))
    gpg_keys = tuple(sorted(_texts(entry.get("gpgKeys"), f"{where}.gpgKeys")))
    if not _PRINCIPAL.fullmatch(user):
        raise GitOpsGuardError(f"{where}.user: {user[:80]!r} is not a user name (no spaces, commas, quotes or "
                               "wildcards: it becomes a principal in git's allowed-signers file)")  # fmt: skip
    if not (keys or gpg_keys or github):
        raise GitOpsGuardError(f"{where}: needs `user`, and `keys`, `gpgKeys` or a `github` login")
    identity = Identity(user, _texts(entry.get("groups"), f"{where}.groups"))
    return TrustedSigner(identity, keys, github, gpg_keys, user in admins)


def _ssh_key(text: str, where: str) -> str:
    """ "type base64" of a public key line; anything else (options, a certificate authority) is refused, since
    it would be written into git's allowed-signers file as it stands."""
    words = text.split()
    if len(words) < 2 or not _KEY_TYPE.fullmatch(words[0]) or not _BASE64.fullmatch(words[1]):
        raise GitOpsGuardError(f"{where}: {text[:40]!r}... is not a public key line such as 'ssh-ed25519 AAAA...'")
    return f"{words[0]} {words[1]}"


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_FIELD:
        raise GitOpsGuardError(f"{where}: must be a string of at most {MAX_FIELD} characters")
    return value.strip()


def _texts(value: Any, where: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list):
        raise GitOpsGuardError(f"{where}: must be a list of strings")
    return frozenset(t for item in value if (t := _text(item, where)))
