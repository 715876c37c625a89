"""Shard Leases: which replica reconciles which units, so that no unit is reconciled by two at once.

Each shard ``k`` has a Lease ``gitopsguard-shard-<k>`` and each replica a membership Lease
``gitopsguard-replica-<digest of its identity>``, in the controller's namespace. A round (every retry period,
and right when an observed lease runs out) lists the Leases once, renews the replica's membership and the
shards it holds, gives back what is over its fair share, and takes free or expired shards up to it
(``units.shards.plan_shards``). Every Lease goes through a ``LeaderElector``: a lease is judged expired by
when *we* saw it last change, on our clock, never by the times written in it.

The check that guards every pass is ``holds(claim)``: the shard's Lease was renewed, by a write sent less
than the renew deadline ago on this process's clock, in the same tenure (``Claim.term``) the pass began in.
The clock is CLOCK_BOOTTIME, which keeps counting while the process is stopped (SIGSTOP) or the machine
suspended, so a replica that wakes after its lease ran out finds its claims void before it acts, whatever its
wall clock says. Others take a shard over no sooner than ``lease_seconds - retry_seconds`` after seeing its
last renewal; a write started under a valid claim has ``lease_seconds - retry_seconds - renew_deadline``
seconds to land (``ShardTiming.spare``). A claim is only as good as the checks before each write: a process
paused between a check and the write it guards is the one gap no lease closes (the API server has no fencing
tokens); keep the work between checks short.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from kubernetes import client

from gitopsguard.cluster import retries
from gitopsguard.cluster.inventory import CONTROLLER_NAMESPACE
from gitopsguard.cluster.lease import LeaderElector, identity
from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import ClusterError
from gitopsguard.model import KubeObject

SHARD_PREFIX = "gitopsguard-shard-"
REPLICA_PREFIX = "gitopsguard-replica-"
ROLE_LABEL = "gitopsguard.io/shard-lease"  # "shard" or "replica", for people: rounds go by name
# The shard count each Lease was written under. Replicas that disagree on it map units to shards differently,
# so two of them could hold different shards serving the same unit: one never takes a shard while a live
# Lease carries another count (a change of --shards waits until the replicas of the old count are gone).
COUNT_LABEL = "gitopsguard.io/shards"


def steady() -> float:
    """Seconds on a clock that never steps and keeps counting through a stopped process or a suspend."""
    return time.clock_gettime(time.CLOCK_BOOTTIME) if hasattr(time, "CLOCK_BOOTTIME") else time.monotonic()


def shard_lease(shard: int) -> str:
    return f"{SHARD_PREFIX}{shard}"


def replica_lease(me: str) -> str:
    """A replica's membership Lease: identities hold characters no object name may."""
    return f"{REPLICA_PREFIX}{hashlib.sha256(me.encode()).hexdigest()[:20]}"


@dataclass(frozen=True)
class ShardTiming:
    """client-go's leader election defaults: a 15 s lease, renewed every 2 s, given up 10 s after the last
    renewal that went through."""

    lease_seconds: int = 15
    renew_deadline: float = 10.0
    retry_seconds: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_seconds < self.renew_deadline or self.spare <= 0:
            raise ValueError(
                f"shard leases of {self.lease_seconds} s, renew deadline {self.renew_deadline} s, retry "
                f"{self.retry_seconds} s: need 0 < retry < renew deadline < lease - retry"
            )

    @property
    def spare(self) -> float:
        """Seconds between our last moment of ownership and the first moment another replica may take over."""
        return self.lease_seconds - self.retry_seconds - self.renew_deadline


@dataclass(frozen=True)
class Claim:
    """The right to act on one shard's units, for one tenure of its Lease (``holds`` says if still good)."""

    shard: int
    term: int


@dataclass
class _Term:
    number: int
    until: float  # clock time after which we must not act under this term
    draining: bool = False  # over our share: no new pass starts, the Lease goes once the running ones end
    active: int = 0  # passes running under this term


def shard_api(api: client.ApiClient, timing: ShardTiming) -> RawApi:
    """Requests for the rounds: never retried (a round is tried again on its own period) and bounded well
    within the renew deadline, so a slow server costs a round, not the ownership of every shard."""
    return RawApi(api, timeout=max(timing.renew_deadline / 3, 1.0), retry=retries.ONCE)


def fair_share(shards: int, replicas: int) -> int:
    """How many shards one of ``replicas`` live replicas may hold: ceil(shards / replicas)."""
    return -(-shards // max(replicas, 1))


def preference(me: str, shard: int) -> int:
    """How much replica ``me`` wants ``shard`` (rendezvous hashing): higher first. Two replicas racing for
    the free shards mostly want different ones, and one over its share gives back the ones it likes least."""
    return int.from_bytes(hashlib.sha256(f"{me}/{shard}".encode("utf-8", "surrogatepass")).digest()[:8], "big")


@dataclass(frozen=True)
class ShardView:
    """What one replica knows at the start of a round. ``mine``: shards it holds with time to spare; ``free``:
    shards nobody holds as it observed (absent, released, or not renewed within their duration by its own
    clock); ``replicas``: replicas seen alive, itself included."""

    shards: int
    mine: frozenset[int]
    free: frozenset[int]
    replicas: int


@dataclass(frozen=True)
class ShardPlan:
    """What to do this round: try to take ``acquire`` (most wanted first), give back ``release``."""

    acquire: tuple[int, ...] = ()
    release: tuple[int, ...] = ()


def plan_shards(view: ShardView, me: str) -> ShardPlan:
    """Take free shards up to the fair share, or give back the least wanted beyond it; never both (pure)."""
    share = fair_share(view.shards, view.replicas)
    by_want = sorted(range(view.shards), key=lambda shard: (-preference(me, shard), shard))
    if len(view.mine) > share:
        least_wanted = [shard for shard in reversed(by_want) if shard in view.mine]
        return ShardPlan(release=tuple(least_wanted[: len(view.mine) - share]))
    wanted = [shard for shard in by_want if shard in view.free and shard not in view.mine]
    return ShardPlan(acquire=tuple(wanted[: share - len(view.mine)]))


@dataclass
class _Observed:
    free: set[int] = field(default_factory=set)
    stale: set[int] = field(default_factory=set)  # the server says ours, but no term of ours is running
    replicas: int = 1
    foreign: set[str] = field(default_factory=set)  # live holders that count the shards otherwise
    next_expiry: float = math.inf  # the soonest another holder's lease runs out, as observed


class ShardLeases:
    """One replica's share of the shards. ``start`` runs the rounds in a thread; passes ask ``acting(shard)``
    for a claim and ``holds(claim)`` before each write batch; ``release_all`` at a clean stop."""

    def __init__(
        self, raw: RawApi, shards: int, *, me: str | None = None, namespace: str = CONTROLLER_NAMESPACE,
        timing: ShardTiming = ShardTiming(), clock: Callable[[], float] = steady,
    ) -> None:  # fmt: skip
        if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
            raise ValueError(f"shard leases: {shards!r} shards; give a whole number of at least 1")
        # A random part, as client-go does: a restarted process (same host name, same pid 1 in its container)
        # must not inherit its predecessor's Leases while that one may still be acting on them.
        self.me = me or f"{identity()}_{secrets.token_hex(4)}"
        self.shards, self.timing, self.clock = shards, timing, clock
        self._raw, self._namespace = raw, namespace
        self._path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        self._lock = threading.Lock()
        self._terms: dict[int, _Term] = {}
        self._terms_begun = 0
        self._electors = [self._elector(shard_lease(shard), "shard") for shard in range(shards)]
        self._member = self._elector(replica_lease(self.me), "replica")
        self._others: dict[str, LeaderElector] = {}  # observers of the other replicas' membership Leases
        self._announced = False
        self.foreign: frozenset[str] = frozenset()  # live replicas with another shard count: we take nothing

    def _elector(self, name: str, role: str) -> LeaderElector:
        t = self.timing
        return LeaderElector(
            self._raw, self._namespace, name, me=self.me, lease_seconds=t.lease_seconds, retry_seconds=t.retry_seconds,
            renew_deadline=t.renew_deadline, clock=self.clock, labels={ROLE_LABEL: role, COUNT_LABEL: str(self.shards)},
        )  # fmt: skip

    # The guard, for the passes (any thread).

    @contextlib.contextmanager
    def acting(self, shard: int) -> Iterator[Claim | None]:
        """A claim on ``shard`` for one pass (None when it is not ours now, or is being given back); while the
        pass runs, a shard over our share is not given back. Check ``holds`` before each write batch."""
        claim = None
        with self._lock:
            term = self._terms.get(shard)
            if term is not None and not term.draining and self.clock() < term.until:
                term.active += 1
                claim = Claim(shard, term.number)
        try:
            yield claim
        finally:
            if claim is not None:
                with self._lock:
                    term = self._terms.get(shard)
                    if term is not None and term.number == claim.term:
                        term.active -= 1

    def deadline(self, claim: Claim) -> float | None:
        """The clock time (``self.clock``) until which ``claim`` is good; None when its tenure has ended."""
        with self._lock:
            term = self._terms.get(claim.shard)
            return term.until if term is not None and term.number == claim.term else None

    def holds(self, claim: Claim) -> bool:
        """Whether the pass under ``claim`` may still write: same tenure, renewed within the renew deadline."""
        until = self.deadline(claim)
        return until is not None and self.clock() < until

    def held(self) -> frozenset[int]:
        """The shards we hold with time to spare now."""
        now = self.clock()
        with self._lock:
            return frozenset(shard for shard, term in self._terms.items() if now < term.until)

    # The rounds (one thread).

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name="shard-leases", daemon=True)
        thread.start()
        return thread

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            stop.wait(self.round())

    def round(self) -> float:
        """List the Leases, renew, give back, take; the seconds until the next round is due."""
        try:
            listed = self._raw.get(self._path, f"Leases in {self._namespace}")
        except ClusterError:
            return self.timing.retry_seconds  # nothing renewed: our terms run out at their deadlines
        leases = {str((item.get("metadata") or {}).get("name")): item for item in listed.get("items") or []}
        announced = self._announced  # our membership was stored in an earlier round, before this list
        self._announced = self._write(self._member.attempt, leases.get(replica_lease(self.me))) or announced
        observed = self._observe(leases)
        plan = plan_shards(ShardView(self.shards, self.held(), frozenset(observed.free), observed.replicas), self.me)
        self._renew_or_release(plan, leases, observed.stale - set(plan.acquire))
        self.foreign = frozenset(observed.foreign)
        # We take shards only once our membership was stored before the list we decide on: of two replicas
        # starting together, the later one's list then shows the earlier one (each does not take everything,
        # and one of another shard count is seen before either takes a shard).
        for shard in plan.acquire if announced and not self.foreign else ():
            self._acquire(shard, leases.get(shard_lease(shard)))
        until_expiry = observed.next_expiry - self.clock()  # wake right as a lease runs out, not a retry later
        return min(self.timing.retry_seconds, max(until_expiry + 0.02, 0.02))

    def _observe(self, leases: dict[str, KubeObject]) -> _Observed:
        """Who holds what, as read now; our terms end at once where the Lease says they are not ours."""
        observed = _Observed()
        now = self.clock()
        for shard, elector in enumerate(self._electors):
            holder = elector.observe(leases.get(shard_lease(shard)))
            with self._lock:
                term = self._terms.get(shard)
                if term is not None and (holder != self.me or now >= term.until):
                    del self._terms[shard]  # taken, deleted or released by someone else, or our time ran out
                    term = None
            if holder == self.me and term is None:
                observed.stale.add(shard)
            if not holder or shard in observed.stale:
                observed.free.add(shard)
            elif holder != self.me:
                observed.next_expiry = min(observed.next_expiry, elector.expires_at)
                if not self._counts_alike(leases.get(shard_lease(shard))):
                    observed.foreign.add(holder)
        self._observe_others(leases, observed)
        return observed

    def _counts_alike(self, lease: KubeObject | None) -> bool:
        labels = ((lease or {}).get("metadata") or {}).get("labels") or {}
        return bool(labels.get(COUNT_LABEL) == str(self.shards))

    def _observe_others(self, leases: dict[str, KubeObject], observed: _Observed) -> None:
        """Count the other replicas whose membership Lease we saw renewed within its duration, and note live
        holders of any of our Leases (shards beyond our count included) with another count. Long-dead
        memberships are deleted (on the resourceVersion read: a replica that renews meanwhile keeps its own)."""
        ours = {shard_lease(shard) for shard in range(self.shards)} | {replica_lease(self.me)}
        names = {n for n in leases if n.startswith((REPLICA_PREFIX, SHARD_PREFIX)) and n not in ours}
        self._others = {n: self._others.get(n) or self._elector(n, "replica") for n in names}
        for name, observer in self._others.items():
            holder = observer.observe(leases[name])
            if holder not in ("", self.me) and not self._counts_alike(leases[name]):
                observed.foreign.add(holder)
            elif holder not in ("", self.me):
                observed.replicas += name.startswith(REPLICA_PREFIX)
            elif name.startswith(REPLICA_PREFIX) and self.clock() > observer.expires_at + self.timing.lease_seconds:
                version = (leases[name].get("metadata") or {}).get("resourceVersion")
                options = {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": {"resourceVersion": version}}
                with contextlib.suppress(ClusterError):
                    self._raw.request("DELETE", f"{self._path}/{name}", body=options)

    def _renew_or_release(self, plan: ShardPlan, leases: dict[str, KubeObject], stale: set[int]) -> None:
        """Renew what we hold; give back what the plan releases once no pass runs under it, and what the
        server says is ours though no term of ours runs (a give-back that failed, an earlier round's)."""
        for shard in sorted(self.held()):
            with self._lock:
                term = self._terms[shard]
                term.draining = shard in plan.release
                ending = term.draining and term.active == 0
                if ending:
                    del self._terms[shard]  # stop acting before the Lease says it is free
            lease = leases.get(shard_lease(shard))
            if ending:
                stale.add(shard)
            elif self._write(self._electors[shard].attempt, lease):
                self._extend(shard)
        for shard in sorted(stale):
            self._give_back(leases.get(shard_lease(shard)))

    def _extend(self, shard: int) -> None:
        renewed = self._electors[shard].renewed_at
        with self._lock:
            term = self._terms.get(shard)
            if term is not None and renewed < term.until:  # sent while the term was still good: it goes on
                term.until = renewed + self.timing.renew_deadline

    def _acquire(self, shard: int, lease: KubeObject | None) -> None:
        if not self._write(self._electors[shard].attempt, lease):
            return
        until = self._electors[shard].renewed_at + self.timing.renew_deadline
        with self._lock:
            if shard not in self._terms and self.clock() < until:
                self._terms_begun += 1
                self._terms[shard] = _Term(self._terms_begun, until)

    def _give_back(self, lease: KubeObject | None) -> None:
        """Mark the Lease free (its holder empty), on the resourceVersion read: only if it is still ours."""
        spec = (lease or {}).get("spec") or {}
        if lease is None or spec.get("holderIdentity") != self.me:
            return
        with contextlib.suppress(ClusterError):
            self._raw.request("PUT", f"{self._path}/{lease['metadata']['name']}", body={
                **lease, "spec": {**spec, "holderIdentity": ""}})  # fmt: skip

    @staticmethod
    def _write(attempt: Callable[[KubeObject | None], bool], lease: KubeObject | None) -> bool:
        try:
            return attempt(lease)
        except ClusterError:
            return False  # the server is away: the term runs out at its deadline unless a later round renews

    def release_all(self) -> None:
        """At a clean stop, after the passes have ended: stop acting, give every shard back and leave."""
        with self._lock:
            self._terms.clear()
        for elector in self._electors:
            with contextlib.suppress(ClusterError):
                elector.release()
        with contextlib.suppress(ClusterError):
            self._raw.request("DELETE", f"{self._path}/{replica_lease(self.me)}")
