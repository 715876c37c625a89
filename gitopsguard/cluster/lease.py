"""Leader election on a ``coordination.k8s.io/v1`` Lease, so that of several replicas only one acts.

As client-go does it, expiry is judged by when *we* last saw the record change (our monotonic clock),
never by comparing the holder's timestamps with ours, so clock skew between replicas does not matter.
Writes carry the resourceVersion read, so two candidates cannot both win a takeover.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

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
        retry_seconds: float = 1.0, renew_deadline: float = 10.0,
    ) -> None:  # fmt: skip
        self._raw, self._path = raw, f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
        self._namespace, self._name = namespace, name
        self.me = me or identity()
        self._lease, self._retry, self._deadline = lease_seconds, retry_seconds, renew_deadline
        self._seen: tuple[str, str] | None = None  # (holder, renewTime) as last read
        self._seen_at = 0.0
        self._expires_at = 0.0  # monotonic time the current holder's lease runs out, as observed

    @property
    def observed(self) -> tuple[str, str] | None:
        """(holder, renewTime) as last read; None before the first read of an existing Lease."""
        return self._seen

    def try_acquire_or_renew(self) -> bool:
        """One attempt; True when we hold the lease afterwards."""
        status, lease = self._raw.request("GET", self._path)
        now = datetime.now(UTC)
        if status == 404:
            return self._write("POST", self._body(now, now, 0, None))
        if status != 200:
            return False
        spec = lease.get("spec") or {}
        record = (str(spec.get("holderIdentity") or ""), str(spec.get("renewTime") or ""))
        if record != self._seen:
            self._seen, self._seen_at = record, time.monotonic()
        holder = record[0]
        duration = int(spec.get("leaseDurationSeconds") or self._lease)
        if holder == self.me:
            acquired = spec.get("acquireTime") or _micro(now)
            return self._write("PUT", self._body(now, acquired, int(spec.get("leaseTransitions") or 0), lease))
        # We see a renewal at most one retry period after it happened: count the lease from then.
        self._expires_at = self._seen_at + duration - self._retry
        if holder and time.monotonic() < self._expires_at:
            return False  # someone holds it and renewed within the lease duration, as we observed
        transitions = int(spec.get("leaseTransitions") or 0) + 1
        return self._write("PUT", self._body(now, now, transitions, lease))

    def _body(
        self, now: datetime, acquired: datetime | str, transitions: int, current: KubeObject | None
    ) -> KubeObject:
        metadata: KubeObject = {"name": self._name, "namespace": self._namespace}
        if current is not None:
            metadata["resourceVersion"] = (current.get("metadata") or {}).get("resourceVersion")
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata,
                "spec": {"holderIdentity": self.me, "leaseDurationSeconds": self._lease,
                         "acquireTime": acquired if isinstance(acquired, str) else _micro(acquired),
                         "renewTime": _micro(now), "leaseTransitions": transitions}}  # fmt: skip

    def _write(self, method: str, body: KubeObject) -> bool:
        path = self._path.rsplit("/", 1)[0] if method == "POST" else self._path
        status, _ = self._raw.request(method, path, body=body)
        return status in (200, 201)  # 409: someone else wrote first

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
            until_expiry = self._expires_at - time.monotonic()  # wake right at expiry, not a retry later
            stop.wait(min(self._retry, until_expiry + 0.02) if until_expiry > 0 else self._retry)
        return False

    def keep(self, stop: threading.Event, lost: Callable[[], None]) -> threading.Thread:
        """Renew in a thread; if no renewal succeeds within the renew deadline, call ``lost`` (once)."""

        def renew() -> None:
            last = time.monotonic()
            while not stop.is_set():
                try:
                    if self.try_acquire_or_renew():
                        last = time.monotonic()
                except GitOpsGuardError:
                    pass
                if time.monotonic() - last > self._deadline:
                    lost()
                    return
                stop.wait(self._retry)

        thread = threading.Thread(target=renew, name="leader-lease", daemon=True)
        thread.start()
        return thread
