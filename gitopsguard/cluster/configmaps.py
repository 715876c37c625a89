"""The one ConfigMap store: the inventory, the grants' state and the live scan's state are all kept through it.

Writes are read-modify-write with optimistic concurrency: ``update(name, change)`` applies ``change`` to what
is stored and writes the result with the ``resourceVersion`` it was read at (a create when it is absent). On
409 Conflict ``change`` is applied again to a fresh read, a bounded number of times, so two writers (threads
or processes) never lose each other's updates.

Blobs are gzip-compressed into ``binaryData`` (zlib-compressed blobs of older versions read as well). A value
whose blobs do not fit one ConfigMap (the API server refuses one over 1 MiB) is split into parts:

- each write attempt names its parts ``<name>.<random token>.<i>`` and creates them first, then writes the
  named ConfigMap (the index: its data, and an annotation listing the token, the count and a sha256 of the
  parts) last, with the resourceVersion precondition, and only then deletes the parts the index held before;
- so a reader following the index finds either the parts it names, complete and matching the digest, or
  (when a writer replaced the index and removed them meanwhile) a missing part, and reads the index again;
  a writer that fails or crashes part-way leaves the previous index, and so the previous value, untouched.

Why a random token and not a generation number or a content hash: two writers racing to the same next
generation, or to the same content, would share part names, and one could then delete or overwrite parts the
other's index is about to name. With a token of its own, a writer's parts are removed only by a writer that
first replaced the index naming them. A crash between the parts and the index leaves unreferenced parts
behind (labelled ``configmap-part`` and annotated with the ConfigMap they belong to); they are never read, and
the next write of a value in parts removes those older than ``SWEEP_AFTER``.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import random
import re
import secrets
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from gitopsguard.cluster.rest import RawApi, Request, message_of, parsed
from gitopsguard.errors import ClusterError

ONE_CONFIGMAP = 960 * 1024  # data and blobs kept in the ConfigMap itself, under the API server's 1 MiB
PART_BYTES = 768 * 1024  # compressed bytes per part
MAX_PARTS = 16  # so a value takes at most 12 MiB compressed
MAX_INFLATED = 64 * 1024 * 1024  # a blob once decompressed: the ConfigMap is only as trusted as who may edit it
ATTEMPTS = 32  # writes tried against fresh reads before giving up on a busy ConfigMap
READS = 5  # reads of the index tried while writers replace its parts
PARTS = "gitopsguard.io/parts"  # the index's annotation: which parts hold its blobs
PART_OF = "gitopsguard.io/part-of"  # annotation: the index a part belongs to
PART_OF_HASH = "gitopsguard.io/part-of-hash"  # label: the same, hashed to fit a label value
SWEEP_AFTER = timedelta(hours=1)  # parts no index names are removed once this old: no write takes that long
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
COMPONENT = "app.kubernetes.io/component"
PART_COMPONENT = "configmap-part"
TOKEN = re.compile(r"[0-9a-f]{16}")  # secrets.token_hex(8): a write attempt's parts


@dataclass(frozen=True)
class Packed:
    """One blob as ``binaryData`` holds it: compressed, then base64 (its ``size`` is what a budget counts)."""

    text: str

    @classmethod
    def of(cls, raw: bytes) -> Packed:
        return cls(base64.b64encode(gzip.compress(raw, mtime=0)).decode("ascii"))

    @property
    def size(self) -> int:
        return len(self.text)

    def raw(self) -> bytes:
        """The blob decompressed (gzip, or zlib as older versions wrote). Raises ValueError or zlib.error."""
        inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 32)  # either header, told apart by the library
        raw = inflater.decompress(base64.b64decode(self.text, validate=True), MAX_INFLATED)
        if inflater.unconsumed_tail:
            raise ValueError(f"more than {MAX_INFLATED} bytes once decompressed")
        if not inflater.eof:
            raise ValueError("the compressed blob is cut short")
        return raw


@dataclass(frozen=True)
class Content:
    """What one named ConfigMap holds, however many ConfigMaps it takes."""

    data: Mapping[str, str] = field(default_factory=dict)
    blobs: Mapping[str, Packed] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Stored:
    """A ConfigMap as read: its content and the resourceVersion of the named ConfigMap (the index)."""

    namespace: str
    name: str
    content: Content
    resource_version: str
    parts: tuple[str, ...] = ()  # the part ConfigMaps its blobs are in, if any

    @property
    def where(self) -> str:
        return f"ConfigMap/{self.namespace}/{self.name}"

    def blob(self, key: str) -> bytes | None:
        """The blob under ``key`` decompressed, None when absent; a damaged one raises ClusterError naming it."""
        packed = self.content.blobs.get(key)
        if packed is None:
            return None
        try:
            return packed.raw()
        except (ValueError, zlib.error) as error:
            raise damaged(self.where, f"binaryData {key}: {error}") from error

    def json(self, key: str) -> Any:
        """The blob under ``key`` parsed as JSON, None when absent; damage raises ClusterError naming it."""
        raw = self.blob(key)
        try:
            return None if raw is None else json.loads(raw)
        except (ValueError, RecursionError) as error:  # RecursionError: nested deeper than the parser recurses
            raise damaged(self.where, f"binaryData {key} is not JSON: {error}") from error


def damaged(where: str, detail: str) -> ClusterError:
    return ClusterError(f"{where}: cannot be read ({detail}); it was edited by hand or written by something else: "
                        "restore it from a backup, or delete it to start afresh")  # fmt: skip


class Conflict(Exception):  # noqa: N818  (internal signal, never leaves this module)
    """Someone else wrote the ConfigMap since it was read."""


def ensure_namespace(raw: RawApi, name: str) -> bool:
    """Create Namespace ``name`` unless it exists; True when this call created it. An account that may not
    create namespaces passes when the namespace is there already."""
    status, answer = raw.request("POST", "/api/v1/namespaces", body={"apiVersion": "v1", "kind": "Namespace",
                                                                      "metadata": {"name": name}})  # fmt: skip
    if status in (200, 201):
        return True
    if status == 409:
        return False
    there, _ = raw.request("GET", f"/api/v1/namespaces/{name}")
    if there == 200:
        return False
    raise ClusterError(f"Namespace/{name}: cannot create it: {message_of(status, answer)}; create it "
                       f"(kubectl create namespace {name}) or let this account create namespaces")  # fmt: skip


class ConfigMapStore:
    """Named ConfigMaps in one namespace (created when first written to). Safe to share between threads."""

    def __init__(self, raw: RawApi, namespace: str, *, sweep_after: timedelta = SWEEP_AFTER) -> None:
        self._raw, self.namespace, self._sweep_after = raw, namespace, sweep_after
        self._collection = f"/api/v1/namespaces/{namespace}/configmaps"
        self._lock = threading.Lock()
        self._seen: dict[str, Stored | None] = {}  # last read or written, by name: the first write's guess

    def where(self, name: str) -> str:
        return f"ConfigMap/{self.namespace}/{name}"

    def read(self, name: str) -> Stored | None:
        """The ConfigMap ``name``, None when absent. Raises ClusterError (naming it) when it cannot be read."""
        before = None
        for _ in range(READS):
            status, body = self._raw.request("GET", f"{self._collection}/{name}")
            if status == 404:
                return self._remember(name, None)
            if status != 200:
                raise ClusterError(f"{self.where(name)}: cannot read: {message_of(status, body)}")
            version = (body.get("metadata") or {}).get("resourceVersion")
            try:
                return self._remember(name, self._assemble(body))
            except Conflict as missing:
                if version == before:  # the index did not move: the part is lost, not replaced
                    raise damaged(self.where(name), f"its part {missing} is missing") from missing
                before = version  # a writer replaced the parts since the index was read: read it again
        raise ClusterError(f"{self.where(name)}: its parts kept changing while being read; try again")

    def list(self, *, selector: str = "", prefix: str = "") -> tuple[dict[str, Stored], list[ClusterError]]:
        """The ConfigMaps matching ``selector`` whose names start with ``prefix`` (their parts excepted), and
        an error naming each that cannot be read."""
        query = {"labelSelector": selector} if selector else None
        status, listed = self._raw.request("GET", self._collection, query=query)
        if status == 404:
            return {}, []
        if status != 200:
            raise ClusterError(f"ConfigMaps in {self.namespace}: cannot list: {message_of(status, listed)}")
        found, errors = {}, []
        for body in listed.get("items") or []:
            metadata = body.get("metadata") or {}
            name = str(metadata.get("name") or "")
            if not name.startswith(prefix) or (metadata.get("labels") or {}).get(COMPONENT) == PART_COMPONENT:
                continue
            try:
                found[name] = stored = self._assemble(body)
                self._remember(name, stored)
            except Conflict:
                found_again = self.read(name)  # its parts moved under the list: read it on its own
                if found_again is not None:
                    found[name] = found_again
            except ClusterError as error:
                errors.append(error)
        return found, errors

    def update(self, name: str, change: Callable[[Stored | None], Content | None]) -> Stored | None:
        """Write ``change(current)`` (None deletes it), retried against a fresh read on conflict; what is
        stored then. Nothing is written when ``change`` keeps a freshly read content as it is."""
        with self._lock:
            known, current = name in self._seen, self._seen.get(name)
        fresh = not known
        if not known:
            current = self.read(name)
        for attempt in range(ATTEMPTS):
            wanted = change(current)
            if fresh and (wanted is None if current is None else current.content == wanted):
                return current
            try:
                return self._remember(name, self._write(name, wanted, current))
            except Conflict:
                time.sleep(random.uniform(0, 0.002 * 2 ** min(attempt, 6)))  # noqa: S311  (jitter, not secrecy)
                current, fresh = self.read(name), True
        raise ClusterError(f"{self.where(name)}: changed by another writer {ATTEMPTS} times while being written; "
                           "try again")  # fmt: skip

    def put(self, name: str, content: Content) -> Stored | None:
        """Replace the ConfigMap's content, whatever it holds."""
        return self.update(name, lambda _: content)

    def delete(self, name: str) -> None:
        self.update(name, lambda _: None)

    def _remember(self, name: str, stored: Stored | None) -> Stored | None:
        with self._lock:
            self._seen[name] = stored
        return stored

    # -- writing ---------------------------------------------------------------------------------------

    def _write(self, name: str, wanted: Content | None, current: Stored | None) -> Stored | None:
        if wanted is None:
            if current is not None:
                self._delete_index(current)
                self._drop_parts(current.parts)
            return None
        blob_bytes = sum(len(p.text) * 3 // 4 for p in wanted.blobs.values())
        inline = blob_bytes + sum(len(k) + len(v.encode()) for k, v in wanted.data.items()) <= ONE_CONFIGMAP
        token = "" if inline else secrets.token_hex(8)
        parts = () if inline else self._write_parts(name, token, wanted)
        try:
            version = self._write_index(name, _index(name, wanted, token, parts, inline), current)
        except Conflict:
            self._drop_parts(parts)
            raise
        if current is not None:
            self._drop_parts(tuple(p for p in current.parts if p not in parts))
        if parts or (current is not None and current.parts):
            self._sweep(name, parts)
        return Stored(self.namespace, name, wanted, version, parts)

    def _write_parts(self, name: str, token: str, wanted: Content) -> tuple[str, ...]:
        joined = b"".join(base64.b64decode(wanted.blobs[key].text) for key in sorted(wanted.blobs))
        count = -(-len(joined) // PART_BYTES)
        if count > MAX_PARTS:
            raise ClusterError(f"{self.where(name)}: {len(joined)} bytes compressed, more than the "
                               f"{MAX_PARTS * PART_BYTES} a stored value may take; nothing was written")  # fmt: skip
        names = _part_names(name, token, count)
        for i, part in enumerate(names):
            chunk = base64.b64encode(joined[i * PART_BYTES : (i + 1) * PART_BYTES]).decode("ascii")
            body = {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": part, "labels": {COMPONENT: PART_COMPONENT, PART_OF_HASH: _hash(name)},
                                 "annotations": {PART_OF: name}},
                    "binaryData": {"part": chunk}}  # fmt: skip
            status, answer = self._create(body)
            if status != 201:
                self._drop_parts(names[:i])
                raise ClusterError(f"{self.where(part)}: cannot write part {i} of {name}: "
                                   f"{message_of(status, answer)}")  # fmt: skip
        return names

    def _write_index(self, name: str, body: dict[str, Any], current: Stored | None) -> str:
        if current is None:
            status, answer = self._create(body)
        else:
            body["metadata"]["resourceVersion"] = current.resource_version
            status, answer = self._raw.request("PUT", f"{self._collection}/{name}", body=body)
        if status == 409 or (status == 404 and current is not None):
            raise Conflict()  # changed, created or removed by someone else since it was read
        if status not in (200, 201):
            raise ClusterError(f"{self.where(name)}: cannot write: {message_of(status, answer)}")
        return str((answer.get("metadata") or {}).get("resourceVersion") or "")

    def _create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        answer = self._raw.request("POST", self._collection, body=body)
        if answer[0] == 404:  # no namespace yet: the first write makes it
            ensure_namespace(self._raw, self.namespace)
            answer = self._raw.request("POST", self._collection, body=body)
        return answer

    def _delete_index(self, current: Stored) -> None:
        options = {"apiVersion": "v1", "kind": "DeleteOptions",
                   "preconditions": {"resourceVersion": current.resource_version}}  # fmt: skip
        status, answer = self._raw.request("DELETE", f"{self._collection}/{current.name}", body=options)
        if status == 409:
            raise Conflict()
        if status not in (200, 202, 404):
            raise ClusterError(f"{current.where}: cannot remove: {message_of(status, answer)}")

    def _sweep(self, name: str, keep: tuple[str, ...]) -> None:
        """Remove the parts of ``name`` that no index names, left by writes that died between their parts and
        their index, once older than the sweep age (a write under way is younger). Best effort; by metadata
        alone, so the parts' contents are not read."""
        query = {"labelSelector": f"{COMPONENT}={PART_COMPONENT},{PART_OF_HASH}={_hash(name)}"}
        try:
            ((status, _, listed, _),) = self._raw.send_all([Request("GET", self._collection, query, None,
                                                                 accept=METADATA_LIST)], 1)  # fmt: skip
        except ClusterError:
            return  # the next write sweeps
        if status != 200:
            return
        cutoff = datetime.now(UTC) - self._sweep_after
        for item in parsed(listed).get("items") or []:
            metadata = item.get("metadata") or {}
            part, made = str(metadata.get("name") or ""), str(metadata.get("creationTimestamp") or "")
            if part in keep or (metadata.get("annotations") or {}).get(PART_OF) != name:
                continue
            try:
                old = datetime.fromisoformat(made.replace("Z", "+00:00")) <= cutoff
            except ValueError:
                continue
            if old:
                self._drop_parts((part,))

    def _drop_parts(self, parts: tuple[str, ...]) -> None:
        """Best effort: a part left behind is never read (no index names it)."""
        for part in parts:
            self._raw.request("DELETE", f"{self._collection}/{part}")

    # -- reading ---------------------------------------------------------------------------------------

    def _assemble(self, body: dict[str, Any]) -> Stored:
        metadata = body.get("metadata") or {}
        name = str(metadata.get("name") or "")
        data, binary = body.get("data") or {}, body.get("binaryData") or {}
        if not isinstance(data, dict) or not isinstance(binary, dict):
            raise damaged(self.where(name), "data or binaryData is not a map")
        labels = dict(metadata.get("labels") or {})
        listing = (metadata.get("annotations") or {}).get(PARTS)
        blobs = {str(k): Packed(str(v)) for k, v in binary.items()}
        parts: tuple[str, ...] = ()
        if listing is not None:
            parts, blobs = self._read_parts(name, str(listing))
        content = Content({str(k): str(v) for k, v in data.items()}, blobs, labels)
        return Stored(self.namespace, name, content, str(metadata.get("resourceVersion") or ""), parts)

    def _read_parts(self, name: str, listing: str) -> tuple[tuple[str, ...], dict[str, Packed]]:
        """The parts the index names, each checked to be a part of this index: the next write deletes them, so
        an index edited to name another ConfigMap must not get that one deleted."""
        try:
            index = json.loads(listing)
            parts, digest, token = tuple(str(p) for p in index["parts"]), str(index["sha256"]), str(index["token"])
            sizes = {str(k): int(v) for k, v in index["sizes"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise damaged(self.where(name), f"annotation {PARTS}: {error}") from error
        if len(parts) > MAX_PARTS or not TOKEN.fullmatch(token) or parts != _part_names(name, token, len(parts)):
            raise damaged(self.where(name), f"annotation {PARTS} names ConfigMaps that are not its parts")
        chunks = []
        for part in parts:
            status, body = self._raw.request("GET", f"{self._collection}/{part}")
            if status == 404:
                raise Conflict(part)  # replaced since the index was read (or lost: the next read tells)
            if status != 200:
                raise ClusterError(f"{self.where(part)}: cannot read part of {name}: {message_of(status, body)}")
            chunks.append(self._chunk(name, part, body))
        return parts, _split(self.where(name), b"".join(chunks), digest, sizes)

    def _chunk(self, name: str, part: str, body: dict[str, Any]) -> bytes:
        metadata = body.get("metadata") or {}
        if (metadata.get("labels") or {}).get(COMPONENT) != PART_COMPONENT or (
            (metadata.get("annotations") or {}).get(PART_OF) != name
        ):
            raise damaged(self.where(name), f"{part} is not one of its parts")
        try:
            return base64.b64decode(str((body.get("binaryData") or {})["part"]), validate=True)
        except (ValueError, KeyError, TypeError) as error:
            raise damaged(self.where(part), f"part of {name}: {error}") from error


def _hash(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:32]


def _part_names(name: str, token: str, count: int) -> tuple[str, ...]:
    return tuple(f"{name[:200].rstrip('-.')}.{token}.{i}" for i in range(count))


def _split(where: str, joined: bytes, digest: str, sizes: dict[str, int]) -> dict[str, Packed]:
    if any(size < 0 for size in sizes.values()) or sum(sizes.values()) != len(joined):
        raise damaged(where, "its parts do not add up to the sizes its index holds")
    if hashlib.sha256(joined).hexdigest() != digest:
        raise damaged(where, "its parts do not match the digest its index holds")
    blobs, at = {}, 0
    for key in sorted(sizes):
        blobs[key] = Packed(base64.b64encode(joined[at : at + sizes[key]]).decode("ascii"))
        at += sizes[key]
    return blobs


def _index(name: str, wanted: Content, token: str, parts: tuple[str, ...], inline: bool) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": dict(wanted.labels)}
    if inline:
        binary = {k: p.text for k, p in wanted.blobs.items()}
    else:
        raw = {k: base64.b64decode(wanted.blobs[k].text) for k in sorted(wanted.blobs)}
        joined = b"".join(raw.values())
        listing = {"token": token, "parts": list(parts), "sha256": hashlib.sha256(joined).hexdigest(),
                   "sizes": {k: len(v) for k, v in raw.items()}}  # fmt: skip
        metadata["annotations"] = {PARTS: json.dumps(listing, separators=(",", ":"))}
        binary = {}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": dict(wanted.data),
            "binaryData": binary}  # fmt: skip
