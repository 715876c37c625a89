"""The controller's rollout (both replicas Ready) while the demo's story begins (``demo_incluster.py``).

On a new install the leader is Ready once its loop made its first attempt, and applies the root and the three
Units within seconds; the standby becomes Ready only once it judges admission by the revision the leader
applied, which it reads from the root's inventory every 10 s (``admission/applied.py``): up to 10 s after that
apply, with nothing for the demo to do but wait. So ``kubectl rollout status`` runs in a thread of its own,
the story's first steps (the Units Ready, drift, review, ...) run meanwhile on the leader, which takes the
admission requests of its own applies, and the story waits for the rollout before the steps that need both
replicas (every replica's webhook, the handover). A failed rollout fails the demo there, as it did the install.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Rollout:
    """``check`` (which raises when the rollout does not complete) in a thread; ``wait`` returns the
    ``time.monotonic()`` at which it completed, or raises what ``check`` raised."""

    def __init__(self, check: Callable[[], object]) -> None:
        self._check = check
        self._done_at = 0.0
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="demo-rollout", daemon=True)

    def start(self) -> Rollout:
        self._thread.start()
        return self

    def wait(self) -> float:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._done_at

    def _run(self) -> None:
        try:
            self._check()
            self._done_at = time.monotonic()
        except BaseException as error:  # any failure, a bug too, must reach `wait`: the story stops there
            self._error = error
