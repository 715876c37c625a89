"""Every Unit's applied policies on every replica, whether or not it serves the Unit (issue 19).

A replica that leads and serves every Unit learns each one's policies from its passes; a follower, a replica
under ``--shards`` that holds none of a Unit's shard, or a leader restarted before its first pass does not.
So each replica follows the inventories (``InventoryHeads``: one watch of the ConfigMaps in
``gitopsguard-system``, keeping of each only its last applied commit and the settings it was applied with)
and reads, from its own clone, the own policies of every Unit the root's applied commit declares
(``UnitsFollower``): at that Unit's last applied commit, from the ``policiesPath`` and into the namespace it
was applied with (``Inventory.applied_as``; the root's spec when that cannot be read). A refused revision moves
no inventory, so it changes nothing here. A Unit is read again only when its commit or its settings moved: at
rest a round over 1,000 Units compares 1,000 pairs of strings.

What cannot be read (its commit gone from the clone, a folder that no longer loads) keeps the Unit's last
known policies; with none known its namespace is ``unknown`` to ``Governance``, and admission refuses there.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.configmaps import COMPONENT
from gitopsguard.cluster.informer import Informer
from gitopsguard.cluster.inventory import CONTROLLER_NAMESPACE, InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import GitOpsGuardError
from gitopsguard.gate import policies_at
from gitopsguard.model import KubeObject
from gitopsguard.policy import PolicySet
from gitopsguard.policy.compose import restricting
from gitopsguard.policy.load import load_own_policies
from gitopsguard.reconcile import Unit, renderer
from gitopsguard.render.stored import RenderStore
from gitopsguard.scan.governed import Applied, Governed
from gitopsguard.source import GitSource
from gitopsguard.units import UnitSpec, unit_id
from gitopsguard.units.root import Root, units_of_root
from gitopsguard.units.spec import DEFAULTS, UnitDefaults, normal_path

INVENTORY_PREFIX = "gitopsguard-inventory-"
# Unit.settings: "path=P namespace=N policies=ROOT[+OWN] deny=D[ remote-bases]"; paths hold no spaces
_SETTINGS = re.compile(r"path=(\S+) namespace=([a-z0-9]([-a-z0-9]*[a-z0-9])?) policies=(\S*) deny=\S+( remote-bases)?")
_MAX_VALUE = 4096  # a commit or settings longer than this is nobody's: ignored


@dataclass(frozen=True)
class Head:
    """What a unit's inventory says it last applied: the commit (None: nothing yet), and with which settings."""

    last_applied: str | None
    applied_as: str = ""


def settings_of(applied_as: str, root_policies: str | None) -> tuple[str, str | None] | None:
    """(namespace, own policiesPath or None) a Unit's last applied commit was applied with, read from
    ``Inventory.applied_as`` (``reconcile.Unit.settings``); None when it does not read so (an older version's,
    or damaged): then the root's spec says."""
    found = _SETTINGS.fullmatch(applied_as)
    if found is None:
        return None
    namespace, policies, platform = found.group(2), found.group(4), root_policies or ""
    if policies == platform:
        return namespace, None
    own = policies.removeprefix(platform + "+") if policies.startswith(platform + "+") else ""
    return (namespace, own) if own else None


class InventoryHeads:
    """Each inventory's ``Head``, kept by one watch of the inventories (their data only; entries are never
    unpacked). ``heads()`` is None until the watch has listed them; ``wait`` returns early on any change."""

    def __init__(self, namespace: str = CONTROLLER_NAMESPACE) -> None:
        self.namespace = namespace
        self._lock = threading.Lock()
        self._heads: dict[str, Head] = {}
        self._synced = False
        self._changed = threading.Event()

    def start(self, make_applier: Callable[[], Applier], raw: RawApi, stop: threading.Event) -> threading.Thread:
        """Watch in a thread until ``stop``. The applier is made there: its discovery asks the API server, which
        may be away when the process starts (the heads stay unknown, so admission refuses, until it answers)."""

        def run() -> None:
            while not stop.is_set():
                try:
                    applier = make_applier()
                except Exception:  # the client library's discovery raises what it meets: try again
                    stop.wait(2.0)
                    continue
                Informer(applier, raw, ("v1", "ConfigMap"), namespace=self.namespace, keep_objects=False,
                         selector=f"{COMPONENT}=inventory", what=f"inventories in {self.namespace} (policies)",
                         on_event=self.seen, on_sync=self._synced_now).run(stop)  # fmt: skip
                return

        thread = threading.Thread(target=run, name="watch-inventory-heads", daemon=True)
        thread.start()
        return thread

    def heads(self) -> dict[str, Head] | None:
        with self._lock:
            return dict(self._heads) if self._synced else None

    def wait(self, seconds: float) -> None:
        self._changed.wait(seconds)
        self._changed.clear()

    def seen(self, change: str, body: KubeObject) -> None:
        name = str((body.get("metadata") or {}).get("name") or "")
        if not name.startswith(INVENTORY_PREFIX):
            return
        unit = name.removeprefix(INVENTORY_PREFIX)
        with self._lock:
            if change == "DELETED":
                self._heads.pop(unit, None)
            else:
                self._heads[unit] = head_of(body)
        self._changed.set()

    def _synced_now(self, synced: bool) -> None:
        with self._lock:
            self._synced = self._synced or synced  # once listed, a later failure leaves the last heads known
        self._changed.set()


def head_of(body: KubeObject) -> Head:
    """An inventory ConfigMap's ``Head``; odd values (not text, too long) read as nothing applied."""
    data = body.get("data")
    data = data if isinstance(data, dict) else {}
    commit, settings = data.get("lastApplied"), data.get("appliedAs")
    commit = commit if isinstance(commit, str) and 0 < len(commit) <= _MAX_VALUE else None
    settings = settings if isinstance(settings, str) and len(settings) <= _MAX_VALUE else ""
    return Head(commit, settings)


def _read_already(known: Applied | None, head: Head) -> bool:
    """Whether ``known`` holds the policies of exactly what ``head`` says was applied (nothing to read)."""
    return known is not None and known.policies is not None and (known.commit, known.settings) == (
        head.last_applied, head.applied_as)  # fmt: skip


def heads_of(store: InventoryStore) -> dict[str, Head]:
    """Every inventory's ``Head`` from one list (a one-off read, and tests; a long-running replica watches)."""
    return {unit: Head(inventory.last_applied, inventory.applied_as) for unit, inventory in store.units().items()}


@dataclass(frozen=True)
class _Declared:
    """A Unit the root's applied commit declares: its id, and its spec when it reads (else None)."""

    id: str
    spec: UnitSpec | None


class UnitsFollower:
    """Feeds ``governed`` with each declared Unit's applied policies, read from ``source`` (this replica's own
    clone). One thread calls ``follow_once``."""

    def __init__(
        self, root: Unit, source: GitSource, governed: Governed, *, defaults: UnitDefaults = DEFAULTS,
        on_error: Callable[[str], None] = lambda _: None,
    ) -> None:  # fmt: skip
        self.root, self.source, self._defaults = root, source, defaults
        self.governed = governed  # shared with the Units loop, which feeds it after its passes
        self._on_error = on_error
        self._root = Root(normal_path(root.path), root.name)
        self._render = renderer(RenderStore(source.workdir / "renders", root.render_settings), root.render_settings)
        self._declared: tuple[str, tuple[_Declared, ...]] | None = None  # at the root's applied commit
        self.reads = 0  # Units whose policies were read (for tests and the bench)

    def follow_once(self, root_commit: str | None, heads: Mapping[str, Head]) -> None:
        """Bring ``governed`` to what ``heads`` say each Unit of ``root_commit`` last applied. Raises
        GitOpsGuardError when the root's applied commit cannot be read (nothing changes then)."""
        declared = self._declared_at(root_commit) if root_commit is not None else ()
        wanted: dict[str, list[tuple[str, str, str, str | None, Applied | None]]] = {}
        for unit in declared:
            head = heads.get(unit.id) or Head(None)
            where = self._where(unit, head)
            if where is None:
                continue
            namespace, own = where
            known = self.governed.known(unit.id)
            if head.last_applied is None:  # applied nothing yet: it adds nothing anywhere
                self.governed.settle(unit.id, Applied(namespace, PolicySet()), began=known)
            elif not _read_already(known, head):
                wanted.setdefault(head.last_applied, []).append((unit.id, namespace, head.applied_as, own, known))
        for commit, units in wanted.items():
            self._read(commit, units)
        self.governed.keep_only(u.id for u in declared)

    def _where(self, unit: _Declared, head: Head) -> tuple[str, str | None] | None:
        """The namespace and own policiesPath of the Unit's last apply; the root's spec when its inventory does
        not say; None when neither does (a Unit that never applied, whose spec does not read)."""
        found = settings_of(head.applied_as, self.root.policies_path) if head.last_applied else None
        if found is not None:
            return found
        if unit.spec is None:
            return None
        return unit.spec.target_namespace or unit.spec.ref.namespace, unit.spec.policies_path

    def _declared_at(self, commit: str) -> tuple[_Declared, ...]:
        if self._declared is None or self._declared[0] != commit:
            manifests = self._render(self._checkout(commit), self.root.path, commit)
            found = units_of_root(self._root, manifests, self._defaults, namespace=self.root.default_namespace)
            units = [_Declared(s.id, s) for s in found.units]
            units += [_Declared(unit_id(r.namespace, r.name), None) for r in found.refused_units]
            self._declared = (commit, tuple(units))
        return self._declared[1]

    def _read(self, commit: str, units: Iterable[tuple[str, str, str, str | None, Applied | None]]) -> None:
        """Each Unit's own policies at ``commit`` (one checkout, the root's policies loaded once)."""
        try:
            checkout = self._checkout(commit)
            platform = policies_at(checkout, self.root.policies_path)
        except GitOpsGuardError as error:
            for unit, namespace, *_ in units:
                self._unreadable(unit, namespace, commit, error)
            return
        for unit, namespace, settings, own, known in units:
            try:
                loaded = PolicySet() if own is None else load_own_policies(checkout, own)
                policies = restricting(platform, loaded, unit=unit)
            except GitOpsGuardError as error:
                self._unreadable(unit, namespace, commit, error)
                continue
            self.reads += 1
            self.governed.settle(unit, Applied(namespace, policies, commit, settings), began=known)

    def _checkout(self, commit: str) -> Path:
        try:
            return self.source.checkout_of(commit)
        except GitOpsGuardError:  # not in this clone yet (a Unit applied a commit newer than the root's)
            self.source.fetch(last_applied=None)
            return self.source.checkout_of(commit)

    def _unreadable(self, unit: str, namespace: str, commit: str, error: GitOpsGuardError) -> None:
        self.governed.unreadable(unit, namespace)
        self._on_error(f"Unit {unit}: cannot read the policies it applied at {commit[:12]}: {error}")
