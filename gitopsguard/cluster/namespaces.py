"""Every Namespace, kept current by one watch: what the policy gate reads of namespaces (their Pod Security labels),
for every unit's pass, without a list per pass.

While the watch is in sync (listed, and running or resumed) ``objects`` is what the server stores but for the
watch's lag; after a failure it is None until the next list, and ``Applier.namespaces`` lists for itself.
"""

from __future__ import annotations

import threading

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.informer import Informer
from gitopsguard.cluster.rest import RawApi
from gitopsguard.model import KubeObject, ObjectKey


class NamespaceView:
    def __init__(self, applier: Applier, raw: RawApi) -> None:
        self._informer = Informer(applier, raw, ("v1", "Namespace"), what="Namespaces", on_event=lambda *_: None,
                                  on_sync=self._synced)  # fmt: skip
        self._in_sync = False
        self._lock = threading.Lock()

    def start(self, stop: threading.Event) -> None:
        self._informer.start(stop)

    def objects(self) -> dict[str, KubeObject] | None:
        """Every Namespace by name, or None while the watch is not in sync."""
        with self._lock:
            if not self._in_sync:
                return None
        return {key.name: body for key, body in self._informer.objects().items()}

    def known(self, name: str) -> tuple[bool, KubeObject | None]:
        """Whether the watch is in sync, and then Namespace ``name`` as the watch saw it last (None: not seen)."""
        with self._lock:
            if not self._in_sync:
                return False, None
        return True, self._informer.get(ObjectKey("", "Namespace", "", name))

    def _synced(self, synced: bool) -> None:
        with self._lock:
            self._in_sync = synced
