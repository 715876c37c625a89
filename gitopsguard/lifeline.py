"""A background thread that dies takes the process down.

``gitopsguard run`` is many threads: the reconcile loop, the live cache's watches, the live scan and its
publisher, the grant keeper, Slack delivery, the lease. A thread that ends on an uncaught exception would
otherwise leave the process half alive: serving ``/healthz``, still holding the lease, while grants no
longer expire or notices no longer go out. :func:`install` makes every such death final: the reason is
printed, :data:`DEAD` is set (``/healthz`` answers 503 from then on), and the process exits with
:data:`EXIT_CODE` so that Kubernetes restarts it. Threads that are meant to survive a bad input must catch
it themselves, one input at a time; nothing is allowed to die quietly.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable

EXIT_CODE = 70  # EX_SOFTWARE: an internal part of the process failed
DEAD = threading.Event()


def install(exit_process: Callable[[int], object] = os._exit) -> None:
    """From now on, an uncaught exception in any thread other than the main one ends the process."""

    def on_death(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread is not None else "a background thread"
        DEAD.set()
        sys.stderr.write(
            f"gitopsguard: {name} died ({args.exc_type.__name__}: {args.exc_value}); stopping so that the "
            "process is restarted whole (in a cluster, Kubernetes restarts the Pod)\n"
        )
        sys.stderr.flush()
        exit_process(EXIT_CODE)

    threading.excepthook = on_death
