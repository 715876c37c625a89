"""Leader election on a ``coordination.k8s.io/v1`` Lease, so that of several replicas only one acts.

As client-go does it, expiry is judged by when *we* last saw the record change (our monotonic clock),
never by comparing the holder's timestamps with ours, so clock skew between replicas does not matter.
Writes carry the resourceVersion read, so two candidates cannot both win a takeover. The holder counts its
lease from when its last renewal was *sent* (``renewed_at``), and a renewal counts only when the server stored
a change (the renewTime moves on even if our wall clock is stuck; a write of the same body stores nothing and
renews nothing in the eyes of others). ``observe`` and ``attempt`` take a Lease already read, so that shard
Leases (``shardleases.py``) are judged from one list.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import GitOpsGuardError
from gitopsguard.model import KubeObject


def identity() -> str:
    return f"{socket.gethostname()}_{os.getpid()}"


def _micro(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self, raw: RawApi, namespace: str, name: str, *, me: str | None = None, lease_seconds: int = 15,
        retry_seconds: float = 1.0, renew_deadline: float = 10.0, clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC), labels: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        self._raw, self._path = raw, f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
        self._namespace, self._name = namespace, name
        self.me = me or identity()
        self._lease, self._retry, self._deadline = lease_seconds, retry_seconds, renew_deadline
        self._clock, self._wall, self._labels = clock, wall, labels
        self._seen: tuple[str, str] | None = None  # (holder, renewTime) as last read
        self._seen_at = 0.0
        self._expires_at = 0.0  # clock time the current holder's lease runs out, as observed
        # clock time taken before sending the last write that made or kept us holder: others see that write
        # after it was sent, so counting our lease from here never outlasts theirs
        self.renewed_at = -math.inf

    @property
    def observed(self) -> tuple[str, str] | None:
        """(holder, renewTime) as last read; None before the first read of an existing Lease."""
        return self._seen

    def try_acquire_or_renew(self) -> bool:
        """One attempt; True when we hold the lease afterwards."""
        status, lease = self._raw.request("GET", self._path)
        return self.attempt(lease if status == 200 else None) if status in (200, 404) else False

    def observe(self, lease: KubeObject | None) -> str:
        """Who holds the lease, judged from this read of it (None: absent): "" when nobody does, or the
        holder has not renewed it within its duration as counted on our clock from when we saw the renewal."""
        if lease is None:
            return ""
        spec = lease.get("spec") or {}
        record = (str(spec.get("holderIdentity") or ""), str(spec.get("renewTime") or ""))
        if record != self._seen:
            self._seen, self._seen_at = record, self._clock()
        if record[0] == self.me:
            return self.me
        # We see a renewal at most one retry period after it happened: count the lease from then.
        self._expires_at = self._seen_at + int(spec.get("leaseDurationSeconds") or self._lease) - self._retry
        return record[0] if record[0] and self._clock() < self._expires_at else ""

    @property
    def expires_at(self) -> float:
        """When another holder's lease runs out, as last observed (clock time)."""
        return self._expires_at

    def attempt(self, lease: KubeObject | None) -> bool:
        """One attempt on the Lease as just read (None: absent); True when we hold it afterwards."""
        sent = self._clock()
        holder = self.observe(lease)
        if lease is None:
            written = self._write("POST", self._body(self._wall(), None, 0, None))
        elif holder and holder != self.me:
            return False  # someone holds it and renewed within the lease duration, as we observed
        else:
            spec = lease.get("spec") or {}
            now, transitions = self._after(str(spec.get("renewTime") or "")), int(spec.get("leaseTransitions") or 0)
            mine = holder == self.me
            written = self._write("PUT", self._body(now, spec.get("acquireTime") if mine else None,
                                                    transitions if mine else transitions + 1, lease))  # fmt: skip
        if written:
            self.renewed_at = sent
        return written

    def _after(self, renewed: str) -> datetime:
        """Our wall time, or just after the renewal read if that is later: a renewal must change the record (a
        write of the same body changes nothing, so nobody would see it) whatever our wall clock says."""
        now = self._wall()
        try:
            last = datetime.strptime(renewed, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        except ValueError:
            return now
        return max(now, last + timedelta(microseconds=1))

    def _body(self, now: datetime, acquired: object, transitions: int, current: KubeObject | None) -> KubeObject:
        metadata: KubeObject = {"name": self._name, "namespace": self._namespace}
        if self._labels:
            metadata["labels"] = dict(self._labels)
        if current is not None:
            metadata["resourceVersion"] = (current.get("metadata") or {}).get("resourceVersion")
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata,
                "spec": {"holderIdentity": self.me, "leaseDurationSeconds": self._lease,
                         "acquireTime": acquired if isinstance(acquired, str) and acquired else _micro(now),
                         "renewTime": _micro(now), "leaseTransitions": transitions}}  # fmt: skip

    def _write(self, method: str, body: KubeObject) -> bool:
        """Whether the write went through and changed the stored Lease (a new resourceVersion): the API server
        answers 200 to a write that changes nothing and stores nothing, which renews nothing for others."""
        path = self._path.rsplit("/", 1)[0] if method == "POST" else self._path
        status, answer = self._raw.request(method, path, body=body)
        stored = (answer.get("metadata") or {}).get("resourceVersion")
        return status in (200, 201) and bool(stored) and stored != body["metadata"].get("resourceVersion")

    def release(self) -> None:
        """Give the lease up at a clean shutdown, so that another replica need not wait for it to expire."""
        status, lease = self._raw.request("GET", self._path)
        if status == 200 and (lease.get("spec") or {}).get("holderIdentity") == self.me:
            lease["spec"]["holderIdentity"] = ""
            self._raw.request("PUT", self._path, body=lease)

    def wait_for_leadership(self, stop: threading.Event) -> bool:
        """Block until we lead (True) or ``stop`` is set (False)."""
        while not stop.is_set():
            try:
                if self.try_acquire_or_renew():
                    return True
            except GitOpsGuardError:
                pass  # the API server is away: keep trying
            until_expiry = self._expires_at - self._clock()  # wake right at expiry, not a retry later
            stop.wait(min(self._retry, until_expiry + 0.02) if until_expiry > 0 else self._retry)
        return False

    def keep(self, stop: threading.Event, lost: Callable[[], None]) -> threading.Thread:
        """Renew in a thread; if no renewal succeeds within the renew deadline, call ``lost`` (once). The
        deadline counts from when the last renewal that went through was sent, not from its answer."""

        def renew() -> None:
            while not stop.is_set():
                with contextlib.suppress(GitOpsGuardError):  # the API server is away: the deadline decides
                    self.try_acquire_or_renew()
                if self._clock() - self.renewed_at > self._deadline:
                    lost()
                    return
                stop.wait(self._retry)

        thread = threading.Thread(target=renew, name="leader-lease", daemon=True)
        thread.start()
        return thread
