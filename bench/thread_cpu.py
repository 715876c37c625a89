"""Where a Python process spends its CPU, by thread and by function, for a machine without py-spy.

    python bench/thread_cpu.py OUT MODULE [ARGS...]

Runs ``python -m MODULE ARGS`` in this process with a sampler thread: every 50 ms, each other thread whose CPU
time (``/proc/self/task/TID/stat``, utime + stime) moved since the last look has its current stack charged
with the ticks it used. cProfile sees the main thread only, and there wall time (a Units round waits on the
API server); the CPU is spent on other threads too (the HTTP event loop, the informers), which this sees.

The samples are split into phases by a file: until ``OUT.window`` exists, while it does (the no-op window of
``bench/units_1000.py``), after. At exit (a SIGTERM the module handles ends it normally) ``OUT`` gets, per
phase, the ticks per thread, the functions of gitopsguard by inclusive ticks and the innermost gitopsguard
function of each sample. One tick is 1/SC_CLK_TCK s; a thread's ticks are charged to the stack seen at the
end of the interval in which it used them, so short calls are seen in proportion to how often they run.
The sampler costs CPU of its own (reading /proc for every thread 20 times a second): the process's total is
higher under it than without it.
"""

from __future__ import annotations

import atexit
import os
import runpy
import sys
import threading
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from types import FrameType

EVERY = 0.05  # every 10 ms cost the process about 1 CPU-s a minute with 20 threads (measured)
OURS = f"{os.sep}gitopsguard{os.sep}"


class Sampler:
    def __init__(self, out: Path) -> None:
        self.out, self.window = out, out.with_name(out.name + ".window")
        self.phases: dict[str, tuple[Counter[str], Counter[str], Counter[str]]] = {}
        self._last: dict[int, int] = {}
        self._seen_window = False
        self.totals: dict[str, int] = {}  # the whole process's ticks at the end of each phase, sampler included

    def phase(self) -> str:
        if self.window.exists():
            self._seen_window = True
            return "the no-op window"
        return "after the window" if self._seen_window else "until the window"

    def run(self) -> None:
        me = threading.get_native_id()
        while True:
            natives = {t.ident: (t.native_id, t.name) for t in threading.enumerate()}
            phase = self.phase()
            threads, functions, innermost = self.phases.setdefault(phase, (Counter(), Counter(), Counter()))
            self.totals[phase] = _ticks(None)
            for ident, frame in sys._current_frames().items():
                native, name = natives.get(ident, (None, ""))
                if native is None or native == me:
                    continue
                used = _ticks(native)
                delta, self._last[native] = used - self._last.get(native, used), used
                if delta > 0:
                    threads[_family(name)] += delta
                    stack = _stack(frame)
                    functions.update(dict.fromkeys(set(stack), delta))
                    innermost[stack[-1] if stack else "(outside gitopsguard)"] += delta
            time.sleep(EVERY)

    def dump(self) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        lines, before = [], 0
        for phase, (threads, functions, innermost) in list(self.phases.items()):
            ended = self.totals.get(phase, before)  # a phase the exit came in before its first total
            total, before = ended - before, ended
            lines.append(f"== {phase}: {sum(threads.values()) / tick:.2f} CPU-s seen in the threads sampled, of "
                         f"{total / tick:.2f} the process used (the sampler, and threads that ended between "
                         "samples, are not seen)")  # fmt: skip
            lines += [f"  thread {n}: {t / tick:.2f} s" for n, t in threads.most_common(12)]
            lines += [f"  incl {t / tick:7.2f} s  {f}" for f, t in functions.most_common(40)]
            lines += [f"  self {t / tick:7.2f} s  {f}" for f, t in innermost.most_common(25)]
        self.out.write_text("\n".join(lines + _memory()) + "\n")


def _memory() -> list[str]:
    """Under PYTHONTRACEMALLOC: what holds the memory Python allocated, by file and by line, at exit."""
    if not tracemalloc.is_tracing():
        return []
    now, peak = tracemalloc.get_traced_memory()
    snapshot = tracemalloc.take_snapshot()
    lines = [f"== memory traced: {now / 2**20:.1f} MiB held at exit, peak {peak / 2**20:.1f} MiB"]
    for by in ("filename", "lineno"):
        top = snapshot.statistics(by)[:25]
        lines += [f"  {s.size / 2**20:7.2f} MiB {s.count:8d} blocks  {s.traceback}" for s in top]
    if tracemalloc.get_traceback_limit() > 1:  # where the largest holders were allocated from, our frames
        for stat in snapshot.statistics("traceback")[:12]:
            ours = [f"{f.filename.rsplit(OURS, 1)[-1]}:{f.lineno}" for f in stat.traceback if OURS in f.filename]
            lines.append(f"  {stat.size / 2**20:7.2f} MiB {stat.count:8d} blocks from {' <- '.join(ours[:6])}")
    return lines


def _ticks(native: int | None) -> int:
    """A thread's CPU ticks (None: the whole process's)."""
    try:
        where = f"/proc/self/task/{native}/stat" if native is not None else "/proc/self/stat"
        fields = Path(where).read_text().rsplit(")", 1)[1].split()
    except OSError:  # the thread ended
        return 0
    return int(fields[11]) + int(fields[12])


def _family(name: str) -> str:
    """A thread's name without its number (``Thread-12 (run)`` -> ``Thread (run)``)."""
    head, _, tail = name.partition(" ")
    return " ".join(filter(None, (head.rstrip("0123456789").rstrip("-"), tail)))


def _stack(frame: FrameType | None) -> list[str]:
    """The gitopsguard functions on the stack, outermost first."""
    found = []
    while frame is not None:
        path = frame.f_code.co_filename
        if OURS in path:
            found.append(f"{path.rsplit(OURS, 1)[1]}:{frame.f_code.co_name}")
        frame = frame.f_back
    return found[::-1]


def main() -> None:
    out, module, args = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
    sampler = Sampler(out)
    threading.Thread(target=sampler.run, name="cpu-sampler", daemon=True).start()
    atexit.register(sampler.dump)
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
