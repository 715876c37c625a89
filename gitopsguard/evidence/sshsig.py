"""Git's SSH commit signatures checked in-process, to speed up a verdict git would give; never to give another.

**The rule.** This module answers only "good, by this trusted key" or "not proven". It proves a commit good
only in one narrow, well-formed shape, with checks at least as strict as git's and ssh-keygen's; anything
else (unsigned, OpenPGP, another key type, a byte out of place) is "not proven", and the caller asks git,
whose verdict then stands. So a gap here can cost speed, never create a good verdict git would not give.

**What git signs.** A signed commit is the unsigned commit object with one more header, ``gpgsig``, before
the blank line that ends the headers; its value is the armoured signature, every line after the first
indented by one space. To verify, git collects that header's value as the signature and drops every header
whose name starts with ``gpgsig`` (``gpgsig-sha256`` is the signature header of SHA-256 repositories); the
remaining bytes, exactly, are the signed message. We take only SHA-1 commits in the shape git writes:
``tree``, ``parent`` lines, ``author``, ``committer``, other headers, then exactly one ``gpgsig`` header, the
last, and no other ``gpgsig*`` header; so our message is git's, and git can read the commit at all (git
refuses a commit whose first line is not its tree, yet the signature over what remains would verify). A NUL
byte anywhere leaves the commit to git (git reads one with a NUL in its author line as unsigned).

git also passes ssh-keygen the committer time (``-Overify-time``), which ssh-keygen refuses outside years
1970-9999; a commit whose committer line is not plain, or whose time is near those edges, is left to git.

**The armour** is ``-----BEGIN SSH SIGNATURE-----``, base64 lines, ``-----END SSH SIGNATURE-----``. We take
only canonical base64 (re-encoding gives the same text) and nothing after the end line.

**The SSHSIG blob** (the format OpenSSH describes in PROTOCOL.sshsig), in SSH wire encoding, where a
``string`` is a 4-byte big-endian length and that many bytes:

- the 6 bytes ``SSHSIG`` (no length), then a 4-byte version, 1;
- string: the signer's public key blob (what a ``ssh-ed25519 AAAA...`` line holds in base64);
- string: the namespace, which says what the signature is for: ``git`` for git's objects;
- string: reserved, empty;
- string: the hash algorithm applied to the message, ``sha256`` or ``sha512``;
- string: the signature proper, itself a string naming the signature algorithm followed by a string of
  that algorithm's bytes.

The key does not sign the message: it signs ``SSHSIG``, then as strings the namespace, the reserved field,
the hash algorithm, and the message's hash. A signature made for another namespace (``ssh-keygen -Y sign``
uses ``file``) thus cannot pass for a commit signature. Nothing may follow the last field.

**Identity.** The key blob inside the signature must be exactly (byte for byte) one trusted key's blob, held
by exactly one user in the trust file; the key decides who signed, never a name in the commit.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

MAX_SIGNATURE_BYTES = 16 * 1024  # an armoured RSA-16384 signature is about 6 KiB
_BEGIN, _END = b"-----BEGIN SSH SIGNATURE-----\n", b"-----END SSH SIGNATURE-----\n"
_MAGIC, _NAMESPACE = b"SSHSIG", b"git"
_MESSAGE_HASHES = {b"sha256": hashlib.sha256, b"sha512": hashlib.sha512}
_CURVES: dict[str, tuple[bytes, ec.EllipticCurve, hashes.HashAlgorithm]] = {
    "ecdsa-sha2-nistp256": (b"nistp256", ec.SECP256R1(), hashes.SHA256()),
    "ecdsa-sha2-nistp384": (b"nistp384", ec.SECP384R1(), hashes.SHA384()),
    "ecdsa-sha2-nistp521": (b"nistp521", ec.SECP521R1(), hashes.SHA512()),
}
_RSA_HASHES: dict[bytes, hashes.HashAlgorithm] = {b"rsa-sha2-256": hashes.SHA256(), b"rsa-sha2-512": hashes.SHA512()}
_TREE, _PARENT = re.compile(rb"tree [0-9a-f]{40}"), re.compile(rb"parent [0-9a-f]{40}")
_COMMITTER = re.compile(rb"committer [^<>\n]*<[^<>\n]*> ([1-9][0-9]{0,11}) [+-][0-9]{4}")
_EARLIEST, _LATEST = 2 * 86400, 253402300800 - 2 * 86400  # 1970-01-03 .. 9999-12-30: any time zone stays inside
_LINE = 76  # ssh-keygen writes 70 characters a line; more is not a shape we need to prove


class _ShapeError(ValueError):
    """Internal: the bytes are not in the one shape we prove; never escapes this module (the answer is None)."""


@dataclass(frozen=True)
class Sshsig:
    """The fields of an SSHSIG blob."""

    public_key: bytes
    namespace: bytes
    reserved: bytes
    hash_algorithm: bytes
    signature: bytes


@dataclass(frozen=True)
class TrustedKey:
    """A trusted public key: its blob, who holds it, and how to check a signature blob over data with it."""

    blob: bytes
    user: str
    check: Callable[[bytes, bytes], bool]  # (signature blob, signed data) -> good?


class _Reader:
    """SSH wire encoding, read strictly: every length in bounds, mpints canonical and non-negative."""

    def __init__(self, data: bytes) -> None:
        self._data, self._at = data, 0

    def take(self, size: int) -> bytes:
        if size < 0 or self._at + size > len(self._data):
            raise _ShapeError("truncated")
        chunk, self._at = self._data[self._at : self._at + size], self._at + size
        return chunk

    def uint32(self) -> int:
        value: int = struct.unpack(">I", self.take(4))[0]
        return value

    def string(self) -> bytes:
        return self.take(self.uint32())

    def mpint(self) -> int:
        raw = self.string()
        if raw and (raw[0] & 0x80 or (raw[0] == 0 and (len(raw) == 1 or not raw[1] & 0x80))):
            raise _ShapeError("negative or not minimal")
        return int.from_bytes(raw, "big")

    def end(self) -> None:
        if self._at != len(self._data):
            raise _ShapeError("trailing data")


def good_signer(commit: str, raw: bytes, keys: dict[bytes, TrustedKey]) -> str | None:
    """The user whose trusted SSH key made a good ``git`` signature on the commit object ``raw`` named
    ``commit``; None for "not proven here" (ask git), never a verdict of its own."""
    try:
        return _good_signer(commit, raw, keys)
    except (_ShapeError, InvalidSignature, UnsupportedAlgorithm, ValueError, OverflowError):
        return None


def _good_signer(commit: str, raw: bytes, keys: dict[bytes, TrustedKey]) -> str | None:
    if not re.fullmatch("[0-9a-f]{40}", commit) or _object_id(raw) != commit:
        return None  # not the object named (a SHA-256 repository, a replaced object): git decides
    payload, armoured = split_signed_commit(raw)
    sig = parse_sshsig(dearmor(armoured))
    key = keys.get(sig.public_key)
    if key is None or sig.namespace != _NAMESPACE or sig.reserved or sig.hash_algorithm not in _MESSAGE_HASHES:
        return None
    digest = _MESSAGE_HASHES[sig.hash_algorithm](payload).digest()
    signed = _MAGIC + b"".join(_string(f) for f in (sig.namespace, sig.reserved, sig.hash_algorithm, digest))
    return key.user if key.check(sig.signature, signed) else None


def git_signature(raw: bytes) -> bytes | None:
    """The signature text git checks for a SHA-1 commit object, collected exactly as git collects it: the
    values of every ``gpgsig`` header (first line after ``gpgsig ``, continuation lines without their leading
    space), concatenated; None when there is none (git reports N, "no signature")."""
    found: list[bytes] = []
    inside, at = False, 0
    while at < len(raw):
        end = raw.find(b"\n", at)
        after = len(raw) if end < 0 else end + 1
        line = raw[at:after]
        if inside and line.startswith(b" "):
            found.append(line[1:])
        elif line.startswith(b"gpgsig "):
            found.append(line[len(b"gpgsig ") :])
            inside = True
        elif line.startswith(b"\n"):
            break  # the end of the headers: the message is never searched
        else:
            inside = False
        at = after
    return b"".join(found) if found else None


def split_signed_commit(raw: bytes) -> tuple[bytes, bytes]:
    """(the signed message, the signature text) of a commit in the shape git writes: ``tree``, ``parent``
    lines, ``author``, a plain ``committer`` line, other headers, then one ``gpgsig`` header, the last;
    _ShapeError for any other shape (git may read it differently, or not at all)."""
    if b"\0" in raw:
        raise _ShapeError("a NUL byte")  # git reads a commit with one in its author line as unsigned
    head, blank, body = raw.partition(b"\n\n")
    lines = head.split(b"\n")
    first = next((i for i, line in enumerate(lines) if line.startswith(b"gpgsig")), -1)
    if not blank or first < 0 or not lines[first].startswith(b"gpgsig ") or not _git_order(lines[:first]):
        raise _ShapeError("not a commit in the shape git writes")
    if not all(line.startswith(b" ") for line in lines[first + 1 :]):
        raise _ShapeError("the signature is not the last header")
    committer = _COMMITTER.fullmatch(next(line for line in lines if line.startswith(b"committer ")))
    if committer is None or not _EARLIEST <= int(committer.group(1)) <= _LATEST:
        raise _ShapeError("committer line not plain, or its time near the edges ssh-keygen accepts")
    signature = b"\n".join([lines[first][len(b"gpgsig ") :], *(line[1:] for line in lines[first + 1 :])])
    return b"\n".join(lines[:first]) + b"\n\n" + body, signature + b"\n"


def _git_order(lines: list[bytes]) -> bool:
    """``tree``, any ``parent`` lines, ``author``, ``committer``, then headers git does not read for this."""
    parents = 1
    while parents < len(lines) and _PARENT.fullmatch(lines[parents]):
        parents += 1
    rest = lines[parents + 2 :]
    return (
        len(lines) >= parents + 2
        and _TREE.fullmatch(lines[0]) is not None
        and lines[parents].startswith(b"author ")
        and lines[parents + 1].startswith(b"committer ")
        and not any(line.startswith((b"tree ", b"parent ", b"author ", b"committer ")) for line in rest)
    )


def dearmor(text: bytes) -> bytes:
    """The SSHSIG blob inside canonical armour; _ShapeError otherwise."""
    if len(text) > MAX_SIGNATURE_BYTES or not text.startswith(_BEGIN) or not text.endswith(b"\n" + _END):
        raise _ShapeError("not SSH signature armour")
    lines = text[len(_BEGIN) : -len(_END) - 1].split(b"\n")
    if not all(0 < len(line) <= _LINE for line in lines):
        raise _ShapeError("armour line length")
    encoded = b"".join(lines)
    try:
        blob = base64.b64decode(encoded, validate=True)
    except binascii.Error as error:
        raise _ShapeError("not base64") from error
    if base64.b64encode(blob) != encoded:
        raise _ShapeError("not canonical base64")
    return blob


def parse_sshsig(blob: bytes) -> Sshsig:
    """The fields of an SSHSIG blob, version 1, with nothing after them; _ShapeError otherwise."""
    reader = _Reader(blob)
    if reader.take(len(_MAGIC)) != _MAGIC or reader.uint32() != 1:
        raise _ShapeError("not SSHSIG version 1")
    found = Sshsig(reader.string(), reader.string(), reader.string(), reader.string(), reader.string())
    reader.end()
    return found


def trusted_keys(holders: Iterable[tuple[str, str]]) -> dict[bytes, TrustedKey]:
    """Key blob -> TrustedKey for each ("type base64", user) pair whose key we can check in-process and that
    exactly one user holds (git's own choice between two holders is left to git)."""
    users: dict[bytes, set[str]] = {}
    found: dict[bytes, TrustedKey] = {}
    for line, user in holders:
        key = _trusted_key(line, user)
        if key is not None:
            users.setdefault(key.blob, set()).add(user)
            found.setdefault(key.blob, key)
    return {blob: key for blob, key in found.items() if len(users[blob]) == 1}


def _trusted_key(line: str, user: str) -> TrustedKey | None:
    words = line.split()
    try:
        blob = base64.b64decode(words[1], validate=True)
        reader = _Reader(blob)
        kind = reader.string()
        if kind.decode("ascii") != words[0] or base64.b64encode(blob).decode() != words[1]:
            return None
        check = _checker(words[0], reader)
        reader.end()
    except (_ShapeError, IndexError, UnicodeDecodeError, binascii.Error, ValueError, UnsupportedAlgorithm):
        return None
    return TrustedKey(blob, user, check) if check is not None else None


def _checker(kind: str, reader: _Reader) -> Callable[[bytes, bytes], bool] | None:
    if kind == "ssh-ed25519":
        raw = reader.string()
        return _ed25519(Ed25519PublicKey.from_public_bytes(raw)) if len(raw) == 32 else None
    if kind in _CURVES:
        name, curve, digest = _CURVES[kind]
        if reader.string() != name:
            return None
        point = reader.string()
        if point[:1] != b"\x04":
            return None  # only the uncompressed form ssh-keygen writes
        public = ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
        numbers, half = public.public_numbers(), curve.key_size // 2
        if numbers.x.bit_length() <= half or numbers.y.bit_length() <= half:
            return None  # ssh-keygen refuses such points (sshkey_ec_validate_public); so do we
        return _ecdsa(kind.encode(), public, digest)
    if kind == "ssh-rsa":
        exponent, modulus = reader.mpint(), reader.mpint()
        if not 2048 <= modulus.bit_length() <= 16384:
            return None  # ssh-keygen refuses under 1024 bits; we leave anything unusual to it
        return _rsa(rsa.RSAPublicNumbers(exponent, modulus).public_key())
    return None


def _ed25519(public: Ed25519PublicKey) -> Callable[[bytes, bytes], bool]:
    def check(signature: bytes, data: bytes) -> bool:
        reader = _Reader(signature)
        name, raw = reader.string(), reader.string()
        reader.end()
        if name != b"ssh-ed25519" or len(raw) != 64:
            return False
        public.verify(raw, data)  # InvalidSignature when bad
        return True

    return check


def _ecdsa(
    kind: bytes, public: ec.EllipticCurvePublicKey, digest: hashes.HashAlgorithm
) -> Callable[[bytes, bytes], bool]:
    def check(signature: bytes, data: bytes) -> bool:
        reader = _Reader(signature)
        name, inner = reader.string(), _Reader(reader.string())
        reader.end()
        r, s = inner.mpint(), inner.mpint()
        inner.end()
        if name != kind or not (r and s):
            return False
        public.verify(encode_dss_signature(r, s), data, ec.ECDSA(digest))
        return True

    return check


def _rsa(public: rsa.RSAPublicKey) -> Callable[[bytes, bytes], bool]:
    def check(signature: bytes, data: bytes) -> bool:
        reader = _Reader(signature)
        name, raw = reader.string(), reader.string()
        reader.end()
        if name not in _RSA_HASHES or len(raw) != (public.key_size + 7) // 8:
            return False
        public.verify(raw, data, padding.PKCS1v15(), _RSA_HASHES[name])
        return True

    return check


def _object_id(raw: bytes) -> str:
    return hashlib.sha1(b"commit %d\0" % len(raw) + raw, usedforsecurity=False).hexdigest()


def _string(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value
