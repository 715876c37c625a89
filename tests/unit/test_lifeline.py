"""A background thread that dies takes the whole process down, with a non-zero exit and the reason."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import urllib.error
import urllib.request

import pytest

from gitopsguard import lifeline
from gitopsguard.notify.metrics import Metrics, serve

DYING_THREAD = textwrap.dedent(
    """
    import threading, time
    from gitopsguard import lifeline
    lifeline.install()
    def keeper():
        raise OverflowError("date value out of range")
    threading.Thread(target=keeper, name="grants").start()
    time.sleep(30)
    print("still alive")
    """
)


def test_a_thread_that_dies_ends_the_process_with_a_non_zero_exit_naming_it() -> None:
    done = subprocess.run([sys.executable, "-c", DYING_THREAD], capture_output=True, text=True, timeout=20)
    assert done.returncode == lifeline.EXIT_CODE
    assert "still alive" not in done.stdout
    assert "grants died (OverflowError: date value out of range)" in done.stderr


def test_without_the_lifeline_the_same_death_leaves_the_process_half_alive() -> None:
    script = DYING_THREAD.replace("lifeline.install()", "").replace("time.sleep(30)", "time.sleep(0.5)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=20)
    assert done.returncode == 0
    assert "still alive" in done.stdout


def test_healthz_fails_once_a_thread_has_died(monkeypatch: pytest.MonkeyPatch) -> None:
    exits: list[int] = []
    monkeypatch.setattr(lifeline, "DEAD", threading.Event())
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    lifeline.install(exit_process=exits.append)
    server = serve(("127.0.0.1", 0), Metrics(), lambda: (True, "ready"))
    url = f"http://127.0.0.1:{server.server_port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            assert answer.status == 200
        thread = threading.Thread(target=lambda: 1 / 0, name="scan-publisher")
        thread.start()
        thread.join()
        assert exits == [lifeline.EXIT_CODE]
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(url, timeout=5)
        assert failed.value.code == 503
    finally:
        server.shutdown()
